"""A Django app that registers into every extension point of the step, as memory, costs and traces
will: installed in a worker by ``PROCTOR_EXTRA_APPS=tests.hook_probe``, it writes what each hook
saw, one JSON line each, to the file named by ``HOOK_PROBE_FILE``."""
