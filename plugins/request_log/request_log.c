/* request_log.c — the request_log sink: appends one JSON line per completed
 * request to a file (--log-file), reopens it on SIGHUP, and reports /stats. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <headroom/plugin.h>
#include "line.h"

/* Request bodies may hold prompts and tool outputs: owner-only by default.
 * A file that already exists keeps its mode (logrotate's `create` sets it). */
#define LOG_MODE 0600
#define LOG_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY)

struct rlog {
    const struct hr_host *host;
    struct hr_instance *self;
    char *path;
    int messages, fsync_each;

    /* The sink thread writes and SIGHUP's reopen swaps the fd under `mu`, so
     * a line is always written whole to one file. */
    pthread_mutex_t mu;
    int fd;                    /* -1 while the path cannot be opened */
    uint64_t warned[4];        /* errnos already logged (bit per errno < 255, 255 = the rest) */

    atomic_uint_fast64_t lines, write_errors, reopens, reopen_errors;
    atomic_int warned_no_body;
};

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY_REQUIRED("path", HR_CONF_STRING, "file the JSONL request log is appended to (--log-file sets it)"),
    HR_CONF_KEY("messages", HR_CONF_BOOL, "no",
                 "add the client's request body as `request` (also needs log_messages yes / --log-messages)"),
    HR_CONF_KEY("fsync", HR_CONF_BOOL, "no", "fdatasync after every line: survives power loss, costs a disk flush per request"),
    HR_CONF_END,
};

static int open_log(const char *path)
{
    int fd = open(path, LOG_FLAGS, LOG_MODE);
    return fd >= 0 ? fd : -errno;
}

/* True the first time `err` is seen (and remembers it). With `mu` held. */
static int first_time(struct rlog *s, int err)
{
    unsigned bit = err > 0 && err < 255 ? (unsigned)err : 255;
    uint64_t mask = 1ull << (bit % 64);
    if (s->warned[bit / 64] & mask) return 0;
    s->warned[bit / 64] |= mask;
    return 1;
}

/* Count a failed write; WARN the first time each errno shows up so a full
 * disk is visible without one line per request. Called with `mu` held. */
static void write_failed(struct rlog *s, int err, const char *what)
{
    atomic_fetch_add(&s->write_errors, 1);
    if (!first_time(s, err)) return;
    s->host->log(s->self, HR_LOG_WARN,
                 "cannot %s request log %s: %s; requests are still served, their log lines are lost "
                 "(counted in /stats request_log.write_errors)",
                 what, s->path, strerror(err));
}

/* One write(2) per line: O_APPEND makes it land after whatever is there,
 * and a short write (disk nearly full, signal) is finished in place. */
static int write_all(int fd, const char *buf, size_t len, size_t *done)
{
    *done = 0;
    while (*done < len) {
        ssize_t n = write(fd, buf + *done, len - *done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO;
        *done += (size_t)n;
    }
    return 0;
}

static void on_event(void *state, const struct hr_event *ev)
{
    struct rlog *s = state;
    int has_body = HR_HAS_FIELD(ev, struct hr_event, request_body_len) && ev->request_body;
    if (s->messages && !has_body && ev->model && *ev->model && !atomic_exchange(&s->warned_no_body, 1))
        s->host->log(s->self, HR_LOG_WARN,
                     "`messages yes` but headroomd passes no request bodies: add `log_messages yes` to "
                     "headroom.conf (or run with --log-messages) to log them");
    char *line = NULL;
    size_t len = 0;
    int rc = hr_rlog_format(ev, s->messages, &line, &len);

    pthread_mutex_lock(&s->mu);
    if (rc) {
        write_failed(s, -rc, "format a line for");
        goto out;
    }
    if (s->fd < 0) {
        /* The path was unusable before (missing directory, permissions):
         * try again, so fixing it needs no restart. */
        int fd = open_log(s->path);
        if (fd < 0) {
            write_failed(s, -fd, "open");
            goto out;
        }
        s->fd = fd;
        s->host->log(s->self, HR_LOG_INFO, "request log %s is writable again", s->path);
    }
    size_t done = 0;
    rc = write_all(s->fd, line, len, &done);
    if (rc) {
        /* Lines are whole or absent: cut what part of this one landed
         * (the file offset of an O_APPEND descriptor is its end). If even
         * that fails, end the torn line so the next starts on its own. */
        if (done > 0) {
            off_t end = lseek(s->fd, 0, SEEK_CUR);
            if (end < (off_t)done || ftruncate(s->fd, end - (off_t)done) != 0) (void)!write(s->fd, "\n", 1);
        }
        write_failed(s, -rc, "write to");
        goto out;
    }
    atomic_fetch_add(&s->lines, 1);
    if (s->fsync_each && fdatasync(s->fd) != 0) write_failed(s, errno, "fsync");
out:
    pthread_mutex_unlock(&s->mu);
    free(line);
}

/* SIGHUP after logrotate renamed the file: open the path afresh first (slow
 * part outside the lock), then swap under the lock so the sink thread's
 * current line finishes in the old file and the next goes to the new one. */
static void reopen(void *state)
{
    struct rlog *s = state;
    int fd = open_log(s->path);
    if (fd < 0) {
        atomic_fetch_add(&s->reopen_errors, 1);
        s->host->log(s->self, HR_LOG_WARN, "SIGHUP: cannot reopen request log %s: %s; still writing to the old file",
                     s->path, strerror(-fd));
        return;
    }
    pthread_mutex_lock(&s->mu);
    int old = s->fd;
    s->fd = fd;
    memset(s->warned, 0, sizeof s->warned); /* a new file deserves fresh warnings */
    pthread_mutex_unlock(&s->mu);
    if (old >= 0) close(old);
    atomic_fetch_add(&s->reopens, 1);
    s->host->log(s->self, HR_LOG_INFO, "reopened request log %s", s->path);
}

static json_t *stats_block(void *state)
{
    struct rlog *s = state;
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:b}", "path", s->path, "lines",
                     (json_int_t)atomic_load(&s->lines), "write_errors", (json_int_t)atomic_load(&s->write_errors),
                     "reopens", (json_int_t)atomic_load(&s->reopens), "reopen_errors",
                     (json_int_t)atomic_load(&s->reopen_errors), "messages", s->messages, "fsync", s->fsync_each);
}

/* A relative path is made absolute now, so a reopen finds the same file
 * whatever the working directory is by then. */
static char *absolute(const char *path)
{
    if (path[0] == '/') return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return strdup(path);
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s/%s", cwd, path);
    return out;
}

static void fini(void *state);

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    const char *path = host->conf_string(conf, "path");
    if (!path || !*path) {
        host->log(self, HR_LOG_ERROR,
                  "`path` is required and empty: set the file to append request lines to, e.g. "
                  "`sink request_log { path \"/var/log/headroom/requests.jsonl\"; }`, or run with --log-file FILE");
        return HR_EINVAL;
    }
    struct rlog *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->host = host;
    s->self = self;
    s->fd = -1;
    s->messages = host->conf_bool(conf, "messages");
    s->fsync_each = host->conf_bool(conf, "fsync");
    pthread_mutex_init(&s->mu, NULL);
    if (!(s->path = absolute(path))) {
        fini(s);
        return HR_ENOMEM;
    }
    if (host->register_stats(self, "request_log", stats_block, s)) {
        host->log(self, HR_LOG_ERROR, "cannot register /stats.request_log (out of memory?)");
        fini(s);
        return HR_ENOMEM;
    }
    /* An unusable path does not stop the daemon: serving requests matters
     * more than logging them, and on_event retries the open. */
    int fd = open_log(s->path);
    if (fd < 0) {
        pthread_mutex_lock(&s->mu);
        first_time(s, -fd); /* this WARN covers the first failed request too */
        pthread_mutex_unlock(&s->mu);
        host->log(self, HR_LOG_WARN,
                  "cannot open request log %s: %s; headroomd serves anyway and retries on every request "
                  "(lost lines count in /stats request_log.write_errors)",
                  s->path, strerror(-fd));
    } else {
        s->fd = fd;
        host->log(self, HR_LOG_INFO, "request log: %s (message bodies %s%s)", s->path,
                  s->messages ? "included" : "left out", s->fsync_each ? ", fsync after each line" : "");
    }
    *out = s;
    return HR_OK;
}

static void fini(void *state)
{
    struct rlog *s = state;
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "request_log",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "JSONL request log: one line per completed request (--log-file), reopened on SIGHUP",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .on_event = on_event,
    .reopen = reopen,
};
