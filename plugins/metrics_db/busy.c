/* busy.c — is the host saturated right now? The metrics_db writer sets its
 * SQLite work aside while it is (metrics_db.c): rows arrive fast and the
 * host has less than one idle core to give it. Idle time comes from /proc/stat's first line (Linux); where
 * it cannot be read the host never counts as saturated, and the writer
 * works as it always did. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mdb.h"

#define SAMPLE_MS 100.0 /* a decision holds this long */

void mdb_busy_init(struct mdb_busy *b, double min_rate)
{
    memset(b, 0, sizeof *b);
    b->min_rate = min_rate;
    b->fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    b->cpus = n > 0 ? (double)n : 1;
}

void mdb_busy_close(struct mdb_busy *b)
{
    if (b->fd >= 0) close(b->fd);
    b->fd = -1;
}

/* Idle and total jiffies since boot: 0, or -1 when unreadable. */
static int read_stat(int fd, uint64_t *idle, uint64_t *total)
{
    char buf[512];
    if (lseek(fd, 0, SEEK_SET) < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n <= 0) return -1;
    buf[n] = '\0';
    if (strncmp(buf, "cpu ", 4)) return -1;
    unsigned long long v[8] = {0};
    /* user nice system idle iowait irq softirq steal (guest is in user) */
    if (sscanf(buf + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]) < 4)
        return -1;
    *idle = v[3] + v[4];
    *total = 0;
    for (int i = 0; i < 8; i++) *total += v[i];
    return 0;
}

int mdb_busy_now(struct mdb_busy *b, double now_ms, uint64_t rows)
{
    if (b->fd < 0 || b->min_rate <= 0) return 0;
    if (b->at_ms > 0 && now_ms - b->at_ms < SAMPLE_MS) return b->busy;
    uint64_t idle, total;
    if (read_stat(b->fd, &idle, &total)) {
        mdb_busy_close(b);
        return b->busy = 0;
    }
    if (b->at_ms > 0 && total > b->total) {
        double secs = (now_ms - b->at_ms) / 1e3;
        double rate = (double)(rows - b->rows) / secs;
        /* Idle cores on average over the sample. The writer's own use is
         * not added back: while it loads rows on a saturated host it takes
         * that core from request threads, and it must stop. */
        double spare = b->cpus * (double)(idle - b->idle) / (double)(total - b->total);
        b->rate = rate;
        b->spare = spare;
        b->busy = rate >= b->min_rate && spare < 1.0;
    }
    b->at_ms = now_ms;
    b->rows = rows;
    b->idle = idle;
    b->total = total;
    return b->busy;
}
