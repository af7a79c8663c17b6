/* logc.h — log_compressor's core (no host dependency): line classes, the
 * selection of lines to keep and the rendering, shared by the plugin, its
 * unit test and bench/compress. */
#ifndef HR_LOGC_H
#define HR_LOGC_H
#include <stddef.h>
#include <stdint.h>
#include "textc.h"

struct hr_logc_config {
    size_t head_lines;        /* first lines always kept */
    size_t tail_lines;        /* last lines always kept */
    size_t context_lines;     /* lines kept around each error or warning */
    size_t max_similar;       /* errors/warnings of one template kept before the rest collapse */
    size_t max_stack_frames;  /* frames kept per stack trace (first, last, project frames) */
};

/* Line classes, weakest first. */
enum hr_logc_class {
    HR_LOGC_NORMAL = 0,
    HR_LOGC_BLANK,
    HR_LOGC_PROGRESS,   /* progress bars, spinners, lines a '\r' overwrote */
    HR_LOGC_PASS,       /* one passing (or starting) test: "… ... ok", "--- PASS:", "ok 3 - x", "✓ x" */
    HR_LOGC_FRAME,      /* one stack frame */
    HR_LOGC_FRAME_CONT, /* the source line under a Python frame */
    HR_LOGC_SUMMARY,    /* "5 failed, 120 passed", "test result: …" */
    HR_LOGC_WARN,
    HR_LOGC_ERROR,      /* error, failure, panic, assertion, exception */
};

/* Class of one line (ANSI already removed), and its template hash (digits,
 * hex ids, uuids and times normalised) in *tmpl when tmpl is not NULL. */
enum hr_logc_class hr_logc_classify(const char *s, size_t n, uint64_t *tmpl);

/* "Dec  4 10:05:03 host tag[123]: " at the start of a syslog or journalctl
 * line: its length, else 0 (frames are looked for after it). */
size_t hr_logc_syslog_prefix(const char *s, size_t n);
/* That, or docker compose's "web-1  | " (n when nothing follows it). */
size_t hr_logc_line_prefix(const char *s, size_t n);

/* Whether untyped text (router said text/unknown/search) reads as a build,
 * test or application log worth compressing here. */
int hr_logc_sniff(const char *text, size_t len);

/* hr_text_compress_fn: cfg is a struct hr_logc_config. */
int hr_logc_compress(const void *cfg, const char *text, size_t len, const char *query, struct hr_text_out *out);

#endif
