import json
import os
import threading

from django.apps import AppConfig

_lock = threading.Lock()


def record(hook: str, **data) -> None:
    with _lock, open(os.environ["HOOK_PROBE_FILE"], "a") as out:
        out.write(json.dumps({"hook": hook, **data}, default=str) + "\n")


def context(info):
    from agents.hooks import ContextBlock

    record("context", run=info.run_id, step=info.step, tenant=info.tenant_id, requested_by=info.requested_by_id)
    return [ContextBlock(source="probe", text="The customer prefers short emails.",
                         references=({"id": 1, "version": 1, "score": 0.9},))]


def usage(info, used, writes):
    record("usage", run=info.run_id, step=info.step, kind=used.kind, name=used.name, status=used.status,
           tokens=used.input_tokens + used.output_tokens)


def decision(info, made, writes):
    from console.models import AuditEvent

    record("decision", run=info.run_id, step=info.step, action=made.action, checks=made.policy_checks,
           context=made.context)
    # A row of the hook's own, written with the step (rolled back with it, never twice).
    writes.add(AuditEvent(tenant_id=info.tenant_id, verb="probe.decision", target=f"run {info.run_id}",
                          data={"step": info.step, "action": made.action}))


class FileSpanExporter:
    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        for span in spans:
            record("span", name=span.name, trace_id=format(span.context.trace_id, "032x"))
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=None):
        return True


class HookProbeConfig(AppConfig):
    name = "tests.hook_probe"
    label = "hook_probe"

    def ready(self):
        from agents import hooks

        hooks.register_context(context)
        hooks.register_usage(usage)
        hooks.register_decision(decision)
        hooks.register_span_sink("probe", FileSpanExporter)
