/* log.h — process logging: `LEVEL:logger:message` lines to stderr
 * (`<N>LEVEL:logger:message` when stderr is the journal). */
#ifndef HR_LOG_H
#define HR_LOG_H
#include <stdarg.h>
#include "headroom/plugin.h"

/* Parse "error|warn|info|debug" (also "warning"); -1 when unknown. */
int hr_log_level_parse(const char *s);
const char *hr_log_level_name(enum hr_log_level level);
void hr_log_set_level(enum hr_log_level level);
enum hr_log_level hr_log_get_level(void);
int hr_log_enabled(enum hr_log_level level);
/* 1 when stderr is systemd's journal ($JOURNAL_STREAM matches it): lines
 * then carry a <N> priority prefix. */
int hr_log_to_journal(void);

void hr_logv(enum hr_log_level level, const char *logger, const char *fmt, va_list ap);
void hr_log(enum hr_log_level level, const char *logger, const char *fmt, ...) HR_PRINTF_LIKE(3, 4);

/* A WARN that can repeat (a failing disk, a full fd table): logged at most
 * once per `every_s` seconds; the next line says how many were held back.
 * Declare the limiter static next to the call site. */
struct hr_log_limit {
    _Atomic long long next_ms;
    _Atomic unsigned long long held;
};
void hr_log_limited(struct hr_log_limit *lim, int every_s, enum hr_log_level level, const char *logger, const char *fmt,
                    ...) HR_PRINTF_LIKE(5, 6);
#define HR_WARN_LIMITED(lim, every_s, logger, ...) hr_log_limited(lim, every_s, HR_LOG_WARN, logger, __VA_ARGS__)

#define HR_ERROR(logger, ...) hr_log(HR_LOG_ERROR, logger, __VA_ARGS__)
#define HR_WARN(logger, ...)  hr_log(HR_LOG_WARN, logger, __VA_ARGS__)
#define HR_INFO(logger, ...)  hr_log(HR_LOG_INFO, logger, __VA_ARGS__)
#define HR_DEBUG(logger, ...) \
    do { if (hr_log_enabled(HR_LOG_DEBUG)) hr_log(HR_LOG_DEBUG, logger, __VA_ARGS__); } while (0)
#endif
