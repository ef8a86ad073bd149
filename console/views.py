"""The console shell: home, tenant switching, section pages, tenant admin, health."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from console.access import membership_for, tenant_access
from console.forms import ApiTokenForm, InviteForm, NewAccountForm, RoleForm
from console.health import health_report
from console.models import ApiToken, Invitation, Membership
from console.reveal import reveal_once, revealed
from console.selectors import api_token_list, audit_event_page, invitation_list, member_list, memberships_of
from console.services import (
    InvitationRefused,
    LastAdminError,
    api_token_create,
    api_token_revoke,
    invitation_accept,
    invitation_create,
    invitation_for_token,
    invitation_problem,
    invitation_revoke,
    membership_change_role,
    membership_remove,
)

def login_locked_out(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    """The login page when django-axes refuses a login after too many failures (AXES_LOCKOUT_CALLABLE)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/login.html", {
        "form": AuthenticationForm(request, initial={"username": (credentials or {}).get("username", "")}),
        "locked_out": f"Too many failed logins. For your safety, logging in as this user from here is blocked for "
                      f"{minutes} minutes; try again later, or ask an admin to check the account.",
    }, status=429)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = list(memberships_of(request.user))
    if not memberships:
        return render(request, "console/no_tenant.html")
    last = request.session.get("tenant")
    chosen = next((m for m in memberships if m.tenant.slug == last), memberships[0])
    return redirect("runs", chosen.tenant.slug)


@login_required
@require_POST
def tenant_switch(request: HttpRequest) -> HttpResponse:
    membership = membership_for(request.user, request.POST.get("tenant", ""))
    if membership is None:
        raise Http404("You are not a member of that tenant")
    request.session["tenant"] = membership.tenant.slug
    return redirect("runs", membership.tenant.slug)


@login_required
def tenant_home(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant_access(request, tenant_slug, section="runs")
    return redirect("runs", tenant_slug)


@never_cache  # a new invitation's link is on this page once
@login_required
def admin_members(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    invite_form = InviteForm(request.POST or None)
    if request.method == "POST" and invite_form.is_valid():
        try:
            issued = invitation_create(tenant=membership.tenant, email=invite_form.cleaned_data["email"],
                                       role=invite_form.cleaned_data["role"], actor=request.user)
        except InvitationRefused as error:
            invite_form.add_error("email", str(error))
        else:
            reveal_once(request, tenant=membership.tenant, what="invitation",
                        value={"email": issued.invitation.email, "link": issued.link})
            return redirect("admin_members", tenant_slug)
    return render(request, "console/admin_members.html", {
        "members": member_list(tenant=membership.tenant), "role_form": RoleForm(), "invite_form": invite_form,
        "invitations": invitation_list(tenant=membership.tenant),
        "invited": revealed(request, tenant=membership.tenant, what="invitation")})


@login_required
@require_POST
def admin_member_remove(request: HttpRequest, tenant_slug: str, membership_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    target = get_object_or_404(Membership.objects.for_tenant(membership.tenant).select_related("user"), pk=membership_id)
    try:
        membership_remove(membership=target, actor=request.user)
        messages.success(request, f"{target.user.username} is no longer a member; their API tokens here are revoked.")
    except LastAdminError as error:
        messages.error(request, str(error))
    if target.user_id == request.user.pk and not Membership.objects.filter(pk=target.pk).exists():
        return redirect("home")
    return redirect("admin_members", tenant_slug)


@login_required
@require_POST
def admin_invitation_revoke(request: HttpRequest, tenant_slug: str, invitation_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    invitation = get_object_or_404(Invitation.objects.for_tenant(membership.tenant), pk=invitation_id)
    invitation_revoke(invitation=invitation, actor=request.user)
    messages.success(request, f"The invitation of {invitation.email} is withdrawn; its link no longer works.")
    return redirect("admin_members", tenant_slug)


@never_cache
def invitation_accept_page(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation's link: a new person sets a username and password; someone with an account logs in
    first and joins. Refused (410) when used, expired or withdrawn; 404 when no such invitation."""
    invitation = invitation_for_token(token)
    if problem := invitation_problem(invitation):
        return render(request, "console/invitation.html", {"problem": problem},
                      status=404 if invitation is None else 410)
    account = get_user_model().objects.filter(email__iexact=invitation.email).order_by("pk").first()
    user = request.user if request.user.is_authenticated else None
    form = NewAccountForm(request.POST or None) if account is None and user is None else None
    context = {"invitation": invitation, "account": account, "form": form, "token": token}
    if user is not None and (account is None or account.pk != user.pk):
        context["wrong_account"] = True  # the invitation is for another address: no joining as someone else
    elif request.method == "POST" and (user is not None or form.is_valid()):
        try:
            if user is None:
                joined = invitation_accept(secret=token, username=form.cleaned_data["username"],
                                           password=form.cleaned_data["password1"])
                login(request, joined.user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                joined = invitation_accept(secret=token, user=user)
        except InvitationRefused as error:
            return render(request, "console/invitation.html", {"problem": str(error)}, status=410)
        messages.success(request, f"Welcome to {joined.tenant.name}: you are {joined.get_role_display().lower()}.")
        return redirect("runs", joined.tenant.slug)
    return render(request, "console/invitation.html", context)


@login_required
@require_POST
def admin_member_role(request: HttpRequest, tenant_slug: str, membership_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    target = get_object_or_404(Membership.objects.for_tenant(membership.tenant).select_related("user"), pk=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles: admin, reviewer, finance, member.")
    else:
        try:
            membership_change_role(membership=target, role=form.cleaned_data["role"], actor=request.user)
            messages.success(request, f"{target.user.username} is now {form.cleaned_data['role']}.")
        except LastAdminError as error:
            messages.error(request, str(error))
    return redirect("admin_members", tenant_slug)


@login_required
@require_GET
def admin_audit(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    filters = {"verb": request.GET.get("verb", "")[:64], "actor": request.GET.get("actor", "")[:150]}
    page = audit_event_page(tenant=membership.tenant, cursor=request.GET.get("after", ""), **filters)
    template = "console/admin_audit.html#rows" if request.htmx else "console/admin_audit.html"
    return render(request, template, {"page": page, "filters": filters})


@never_cache  # the new token's secret is on this page once: no copy in any cache
@login_required
def admin_tokens(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        issued = api_token_create(tenant=membership.tenant, name=form.cleaned_data["name"], actor=request.user,
                                  scopes=form.cleaned_data["scopes"])
        reveal_once(request, tenant=membership.tenant, what="api_token",
                    value={"name": issued.token.name, "secret": issued.secret})
        return redirect("admin_tokens", tenant_slug)  # a reload shows the page, it does not make another token
    return render(request, "console/admin_tokens.html", {
        "form": form, "tokens": api_token_list(tenant=membership.tenant),
        "issued": revealed(request, tenant=membership.tenant, what="api_token")})


@login_required
@require_POST
def admin_token_revoke(request: HttpRequest, tenant_slug: str, token_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    token = get_object_or_404(ApiToken.objects.for_tenant(membership.tenant), pk=token_id)
    api_token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked; requests using it now get 401.")
    return redirect("admin_tokens", tenant_slug)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health_report()
    response = JsonResponse(report, status=200 if report["status"] == "ok" else 503)
    response._has_been_logged = True  # a degraded report is an answer, not a server error to log
    return response
