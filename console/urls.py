from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from agents import agent_views as agent_pages
from agents import tool_views
from agents import views as agent_views
from approvals import views as approval_views
from console import views
from console.api import api
from costs import views as cost_views
from demo import views as demo_views
from mcp_servers import views as mcp_views
from traces import views as trace_views
from webhooks import views as webhook_views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("switch-tenant/", views.tenant_switch, name="tenant_switch"),
    path("healthz", views.healthz, name="healthz"),
    path("invite/<str:token>/", views.invitation_accept_page, name="invitation_accept"),
    path("api/v1/", api.urls),
    path("django-admin/", admin.site.urls),
    path("t/<slug:tenant_slug>/", views.tenant_home, name="tenant_home"),
    path("t/<slug:tenant_slug>/runs/", agent_views.runs, name="runs"),
    path("t/<slug:tenant_slug>/runs/<int:run_number>/", agent_views.run_detail, name="run_detail"),
    path("t/<slug:tenant_slug>/runs/<int:run_number>/plan/", agent_views.run_plan_editor, name="run_plan_editor"),
    path("t/<slug:tenant_slug>/runs/<int:run_number>/<str:action>/", agent_views.run_control, name="run_control"),
    path("t/<slug:tenant_slug>/agents/", agent_pages.agents, name="agents"),
    path("t/<slug:tenant_slug>/agents/new/", agent_pages.agent_new, name="agent_new"),
    path("t/<slug:tenant_slug>/agents/<slug:agent_slug>/", agent_pages.agent_detail, name="agent_detail"),
    path("t/<slug:tenant_slug>/agents/<slug:agent_slug>/edit/", agent_pages.agent_edit, name="agent_edit"),
    path("t/<slug:tenant_slug>/agents/<slug:agent_slug>/enabled/", agent_pages.agent_enabled, name="agent_enabled"),
    path("t/<slug:tenant_slug>/agents/<slug:agent_slug>/versions/<int:version>/run/", agent_pages.agent_version_run,
         name="agent_version_run"),
    path("t/<slug:tenant_slug>/demo-systems/", demo_views.systems, name="demo_systems"),
    path("t/<slug:tenant_slug>/approvals/", approval_views.queue, name="approvals"),
    path("t/<slug:tenant_slug>/approvals/<int:approval_id>/", approval_views.detail, name="approval_detail"),
    path("t/<slug:tenant_slug>/approvals/<int:approval_id>/decision/", approval_views.decide, name="approval_decide"),
    path("t/<slug:tenant_slug>/approvals/<int:approval_id>/assignee/", approval_views.assign, name="approval_assign"),
    path("t/<slug:tenant_slug>/memory/", views.section_page("memory"), name="memory"),
    path("t/<slug:tenant_slug>/traces/", trace_views.traces, name="traces"),
    path("t/<slug:tenant_slug>/traces/<int:run_number>/", trace_views.timeline, name="trace_timeline"),
    path("t/<slug:tenant_slug>/traces/<int:run_number>/skeleton/", trace_views.skeleton, name="trace_skeleton"),
    path("t/<slug:tenant_slug>/traces/<int:run_number>/search/", trace_views.search, name="trace_search"),
    path("t/<slug:tenant_slug>/traces/<int:run_number>/spans/<int:span_id>/", trace_views.span, name="trace_span"),
    path("t/<slug:tenant_slug>/traces/<int:run_number>/decisions/", trace_views.decisions, name="trace_decisions"),
    path("t/<slug:tenant_slug>/traces/<int:run_number>/replay/", trace_views.replay, name="trace_replay"),
    path("t/<slug:tenant_slug>/traces/<int:run_number>/compare/", trace_views.compare, name="trace_compare"),
    path("t/<slug:tenant_slug>/traces/batches/", trace_views.batch_create, name="trace_batch_create"),
    path("t/<slug:tenant_slug>/traces/batches/<int:batch_id>/", trace_views.batch, name="trace_batch"),
    path("t/<slug:tenant_slug>/costs/", cost_views.costs_dashboard, name="costs"),
    path("t/<slug:tenant_slug>/costs/runs/", cost_views.costs_runs, name="costs_runs"),
    path("t/<slug:tenant_slug>/costs/runs/<int:run_number>/", cost_views.costs_run, name="costs_run"),
    path("t/<slug:tenant_slug>/costs/ledger.csv", cost_views.costs_ledger_csv, name="costs_ledger_csv"),
    path("t/<slug:tenant_slug>/costs/budgets/", cost_views.costs_budgets, name="costs_budgets"),
    path("t/<slug:tenant_slug>/costs/budgets/<int:budget_id>/", cost_views.costs_budgets, name="costs_budget"),
    path("t/<slug:tenant_slug>/costs/budgets/<int:budget_id>/delete/", cost_views.costs_budget_delete,
         name="costs_budget_delete"),
    path("t/<slug:tenant_slug>/costs/pricing/", cost_views.costs_pricing, name="costs_pricing"),
    path("t/<slug:tenant_slug>/costs/pricing/<int:rule_id>/delete/", cost_views.costs_price_rule_delete,
         name="costs_price_rule_delete"),
    path("t/<slug:tenant_slug>/costs/repricing/<int:job_id>/", cost_views.costs_repricing, name="costs_repricing"),
    path("t/<slug:tenant_slug>/costs/reconciliation/", cost_views.costs_reconciliation, name="costs_reconciliation"),
    path("t/<slug:tenant_slug>/costs/reconciliation/<int:reconciliation_id>/", cost_views.costs_reconciliation,
         name="costs_reconciliation_shown"),
    path("t/<slug:tenant_slug>/admin/", views.admin_members, name="admin_members"),
    path("t/<slug:tenant_slug>/admin/members/<int:membership_id>/role/", views.admin_member_role, name="admin_member_role"),
    path("t/<slug:tenant_slug>/admin/members/<int:membership_id>/remove/", views.admin_member_remove,
         name="admin_member_remove"),
    path("t/<slug:tenant_slug>/admin/invitations/<int:invitation_id>/revoke/", views.admin_invitation_revoke,
         name="admin_invitation_revoke"),
    path("t/<slug:tenant_slug>/admin/audit/", views.admin_audit, name="admin_audit"),
    path("t/<slug:tenant_slug>/admin/policies/", approval_views.policies, name="approval_policies"),
    path("t/<slug:tenant_slug>/admin/policies/<int:policy_id>/", approval_views.policies, name="approval_policy"),
    path("t/<slug:tenant_slug>/admin/policies/webhook/", approval_views.webhook, name="approval_webhook"),
    path("t/<slug:tenant_slug>/admin/tools/", tool_views.tools, name="admin_tools"),
    path("t/<slug:tenant_slug>/admin/tools/<str:tool_name>/risk/", tool_views.tool_risk, name="admin_tool_risk"),
    path("t/<slug:tenant_slug>/admin/mcp/", mcp_views.servers, name="admin_mcp_servers"),
    path("t/<slug:tenant_slug>/admin/mcp/<int:server_id>/", mcp_views.server, name="admin_mcp_server"),
    path("t/<slug:tenant_slug>/admin/mcp/<int:server_id>/<str:action>/", mcp_views.server_action,
         name="admin_mcp_action"),
    path("t/<slug:tenant_slug>/admin/mcp/<int:server_id>/tools/<int:tool_id>/risk/", mcp_views.tool_risk,
         name="admin_mcp_tool_risk"),
    path("t/<slug:tenant_slug>/admin/webhooks/", webhook_views.webhooks, name="admin_webhooks"),
    path("t/<slug:tenant_slug>/admin/webhooks/<int:webhook_id>/remove/", webhook_views.webhook_remove,
         name="admin_webhook_remove"),
    path("t/<slug:tenant_slug>/admin/webhooks/deliveries/<int:delivery_id>/retry/", webhook_views.delivery_resend,
         name="admin_delivery_retry"),
    path("t/<slug:tenant_slug>/admin/tokens/", views.admin_tokens, name="admin_tokens"),
    path("t/<slug:tenant_slug>/admin/tokens/<int:token_id>/revoke/", views.admin_token_revoke, name="admin_token_revoke"),
]
