/* crash.h — a fatal signal names the plugin code it hit. A plugin's apply
 * or on_event runs in headroomd's process: a crash in it takes the daemon
 * down, and without this the log ended at "listening". */
#ifndef HR_CRASH_H
#define HR_CRASH_H

/* What the calling thread runs now, e.g. "transform 'npm_trim' (/usr/lib/
 * headroom/plugins/npm_trim.so)"; NULL in headroomd's own code. Set around
 * each plugin call on the request path (hr_instance.label). */
extern _Thread_local const char *hr_crash_where;

/* Handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT that write one
 * line naming hr_crash_where to stderr, then let the signal do what it did
 * before (the default, or a sanitizer's report). Call once, before threads. */
void hr_crash_install(void);

#endif
