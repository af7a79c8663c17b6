/* bg_thread.h — names for headroomd's threads, as ps -L, top -H and
 * /proc/<pid>/task/<tid>/comm show them: "hr-worker-0", "hr-sink-metrics_db",
 * "hr-export", "hr-housekeep". */
#ifndef HR_BG_THREAD_H
#define HR_BG_THREAD_H

/* Name the calling thread "hr-" + name, cut to Linux's 15 bytes. */
void hr_thread_name(const char *name);
#endif
