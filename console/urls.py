from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from agents import views as agent_views
from approvals import views as approval_views
from console import views
from console.api import api
from demo import views as demo_views
from memory import views as memory_views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("switch-tenant/", views.tenant_switch, name="tenant_switch"),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("django-admin/", admin.site.urls),
    path("t/<slug:tenant_slug>/", views.tenant_home, name="tenant_home"),
    path("t/<slug:tenant_slug>/runs/", agent_views.runs, name="runs"),
    path("t/<slug:tenant_slug>/runs/<int:run_number>/", agent_views.run_detail, name="run_detail"),
    path("t/<slug:tenant_slug>/runs/<int:run_number>/plan/", agent_views.run_plan_editor, name="run_plan_editor"),
    path("t/<slug:tenant_slug>/runs/<int:run_number>/<str:action>/", agent_views.run_control, name="run_control"),
    path("t/<slug:tenant_slug>/demo-systems/", demo_views.systems, name="demo_systems"),
    path("t/<slug:tenant_slug>/approvals/", approval_views.queue, name="approvals"),
    path("t/<slug:tenant_slug>/approvals/<int:approval_id>/", approval_views.detail, name="approval_detail"),
    path("t/<slug:tenant_slug>/approvals/<int:approval_id>/decision/", approval_views.decide, name="approval_decide"),
    path("t/<slug:tenant_slug>/approvals/<int:approval_id>/assignee/", approval_views.assign, name="approval_assign"),
    path("t/<slug:tenant_slug>/memory/", memory_views.memory_page, name="memory"),
    path("t/<slug:tenant_slug>/memory/to-confirm/", memory_views.memory_badge, name="memory_badge"),
    path("t/<slug:tenant_slug>/memory/capture/", memory_views.memory_capture, name="memory_capture"),
    path("t/<slug:tenant_slug>/memory/export.<str:fmt>", memory_views.memory_export, name="memory_export"),
    path("t/<slug:tenant_slug>/memory/<int:record_id>/", memory_views.memory_detail, name="memory_detail"),
    path("t/<slug:tenant_slug>/memory/<int:record_id>/<str:action>/", memory_views.memory_change, name="memory_change"),
    path("t/<slug:tenant_slug>/traces/", views.section_page("traces"), name="traces"),
    path("t/<slug:tenant_slug>/costs/", views.section_page("costs"), name="costs"),
    path("t/<slug:tenant_slug>/admin/", views.admin_members, name="admin_members"),
    path("t/<slug:tenant_slug>/admin/members/<int:membership_id>/role/", views.admin_member_role, name="admin_member_role"),
    path("t/<slug:tenant_slug>/admin/audit/", views.admin_audit, name="admin_audit"),
    path("t/<slug:tenant_slug>/admin/policies/", approval_views.policies, name="approval_policies"),
    path("t/<slug:tenant_slug>/admin/policies/<int:policy_id>/", approval_views.policies, name="approval_policy"),
    path("t/<slug:tenant_slug>/admin/policies/webhook/", approval_views.webhook, name="approval_webhook"),
    path("t/<slug:tenant_slug>/admin/memory/", memory_views.memory_admin, name="memory_admin"),
    path("t/<slug:tenant_slug>/admin/tokens/", views.admin_tokens, name="admin_tokens"),
    path("t/<slug:tenant_slug>/admin/tokens/<int:token_id>/revoke/", views.admin_token_revoke, name="admin_token_revoke"),
]
