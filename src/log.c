/* log.c — process logging. One write(2) per line so lines from worker
 * threads never interleave; control bytes (from request paths, model names,
 * upstream errors) are written as \xNN so a line cannot forge another or
 * drive the terminal; under systemd's journal each line starts with a <N>
 * syslog priority (sd-daemon(3)) so journalctl -p filters by level. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "log.h"

static atomic_int current_level = HR_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARNING", "INFO", "DEBUG"};

int hr_log_level_parse(const char *s)
{
    if (!s) return -1;
    if (!strcasecmp(s, "error")) return HR_LOG_ERROR;
    if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning")) return HR_LOG_WARN;
    if (!strcasecmp(s, "info")) return HR_LOG_INFO;
    if (!strcasecmp(s, "debug")) return HR_LOG_DEBUG;
    return -1;
}

const char *hr_log_level_name(enum hr_log_level level)
{
    return (unsigned)level <= HR_LOG_DEBUG ? level_names[level] : "INFO";
}

void hr_log_set_level(enum hr_log_level level) { atomic_store(&current_level, (int)level); }
enum hr_log_level hr_log_get_level(void) { return (enum hr_log_level)atomic_load(&current_level); }
int hr_log_enabled(enum hr_log_level level) { return (int)level <= atomic_load(&current_level); }

/* stderr is the journal when $JOURNAL_STREAM names its device and inode
 * (a child whose stderr was redirected elsewhere inherits the variable). */
static int to_journal;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;

static void detect_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0)
        to_journal = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int hr_log_to_journal(void)
{
    pthread_once(&journal_once, detect_journal);
    return to_journal;
}

void hr_logv(enum hr_log_level level, const char *logger, const char *fmt, va_list ap)
{
    if (!hr_log_enabled(level)) return;
    /* syslog priorities: err, warning, info, debug */
    static const char *const prio[] = {"<3>", "<4>", "<6>", "<7>"};
    char line[8192];
    const char *p = hr_log_to_journal() ? prio[(unsigned)level <= HR_LOG_DEBUG ? level : HR_LOG_INFO] : "";
    int n = snprintf(line, sizeof line, "%s%s:%s:", p, hr_log_level_name(level), logger ? logger : "headroom");
    if (n < 0) return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0) return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2) len = sizeof line - 2; /* truncated: still one line */
    /* Escape control bytes (and DEL) in place of printing them raw. */
    char esc[sizeof line * 2];
    size_t o = 0;
    for (size_t i = 0; i < len && o < sizeof esc - 6; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(esc + o, 5, "\\x%02x", c);
        else esc[o++] = (char)c;
    }
    esc[o++] = '\n';
    ssize_t w = write(STDERR_FILENO, esc, o);
    (void)w; /* nowhere to report a failing log */
}

void hr_log(enum hr_log_level level, const char *logger, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hr_logv(level, logger, fmt, ap);
    va_end(ap);
}

void hr_log_limited(struct hr_log_limit *lim, int every_s, enum hr_log_level level, const char *logger, const char *fmt,
                    ...)
{
    if (!hr_log_enabled(level)) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    long long next = atomic_load(&lim->next_ms);
    if (now < next || !atomic_compare_exchange_strong(&lim->next_ms, &next, now + (long long)every_s * 1000)) {
        atomic_fetch_add(&lim->held, 1);
        return;
    }
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned long long held = atomic_exchange(&lim->held, 0);
    if (held) hr_log(level, logger, "%s (%llu more like this in the last %d s)", msg, held, every_s);
    else hr_log(level, logger, "%s", msg);
}
