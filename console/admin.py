from django import forms
from django.contrib import admin, messages

from console.models import ApiToken, AuditEvent, Invitation, Membership, Tenant
from console.services import tenant_create


class NewTenantForm(forms.ModelForm):
    first_admin_email = forms.EmailField(help_text="An existing account with this email becomes admin at once; "
                                                   "otherwise they are emailed an admin invitation.")

    class Meta:
        model = Tenant
        fields = ["name", "slug"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:  # adding: the tenant comes with its first admin
            kwargs["form"] = NewTenantForm
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        tenant, membership, issued = tenant_create(name=obj.name, slug=obj.slug, actor=request.user,
                                                   admin_email=form.cleaned_data["first_admin_email"])
        obj.pk = tenant.pk
        obj.created_at = tenant.created_at
        if membership is not None:
            messages.info(request, f"{membership.user.username} is the admin of {tenant.name}.")
        else:
            messages.info(request, f"Invited {issued.invitation.email} as admin; the link (works once): {issued.link}")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["tenant", "role"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "tenant", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["tenant"]
    exclude = ["token_hash"]

    def has_add_permission(self, request):
        return False  # made by tenant admins or with a tenant: the link exists only then


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "tenant", "actor_label", "verb", "target"]
    list_filter = ["tenant"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "prefix", "created_at", "revoked_at"]
    exclude = ["token_hash"]
