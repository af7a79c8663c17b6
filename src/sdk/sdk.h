/* sdk.h — what the files of libheadroom's public API (headroom.h) share:
 * the client, the per-thread error, and the HTTP calls of attached clients. */
#ifndef HR_SDK_H
#define HR_SDK_H
#include <jansson.h>
#include "headroom/headroom.h"
#include "config.h"
#include "loader.h"
#include "pipeline.h"

struct hr_client {
    int offline;
    char *url;                          /* attached: base URL without a trailing '/' */
    char *token;                        /* attached: Bearer token, or NULL */
    int cfg_file;                       /* the config came from a file (not defaults alone); attached:
                                         * without `token`, its stats_token and api_token go with the
                                         * calls they guard */
    long timeout_ms;                    /* attached: whole-call limit (0 = 120 s) */
    struct hr_config cfg;               /* the client's config (also for attached clients) */
    int cfg_loaded;
    struct hr_plugins plugins;          /* offline: transforms initialised */
    int plugins_loaded;
    struct hr_pipeline_opts popts;
    struct hr_instance *history_sink;   /* offline: savings_file, started on first hr_get_history */
    struct hr_plugins history_plugins;  /* when the config has no savings_file block */
    struct hr_conf_doc *history_doc;    /* ... the block generated for it */
    /* offline session counters (hr_compress) */
    uint64_t requests, tokens_before, tokens_after;
    double ratio_sum;
    char last_provider[32];
};

/* Set the calling thread's error (printf-style); returns `code`. */
int hr_sdk_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hr_sdk_clear_error(void);
/* What hr_last_http_status() reports: set by hr_sdk_http when a daemon answers. */
void hr_sdk_set_http_status(int status);

/* Where a sink's file is: `path` of the config's `sink <sink>` block, else
 * `name` in the state root (as lib/state_file.c names it for the sink);
 * *in_block tells whether the config has such a block. malloc'd. */
char *hr_sdk_sink_file(const hr_client *c, const char *sink, const char *name, int *in_block, int *from_path);
/* Why a sink's file `path` is missing, for a message: what to give or set. */
void hr_sdk_missing_file_hint(const hr_client *c, const char *sink, int in_block, int from_path, char *out,
                              size_t outlen);

/* What the server at an attached client's URL answered one call with. */
struct hr_sdk_answer {
    long status;
    char *body;                         /* malloc'd, NUL-terminated */
    size_t len;
    char ctype[128];                    /* its Content-Type, "" for none */
};
/* Attached clients: one HTTP call to the daemon. 0 with *a filled, or
 * HEADROOM_ENET (not reached; error set). */
int hr_sdk_http(const hr_client *c, const char *method, const char *path_and_query, const char *body, size_t len,
                struct hr_sdk_answer *a);
/* headroomd's message in an error answer ({"error": {"message": ...}}, the
 * shape of every refusal and error it sends), or NULL: not its error. */
const char *hr_sdk_error_message(const json_t *v);
/* The server at the client's URL answered `a` where headroomd would have
 * answered otherwise (an HTML page, another service's JSON): something
 * else listens there. Sets HEADROOM_EINVAL (the URL is wrong) with its
 * status and content type, never its body, and hr_last_http_status() 0
 * (no headroomd answered). `what` says what was wrong with the body when
 * its content type does not (NULL: nothing). Returns the code. A 502, 503
 * or 504 is a proxy's answer for a daemon it cannot reach: HEADROOM_ENET,
 * saying so. */
int hr_sdk_not_headroomd(const hr_client *c, const char *method, const char *path_and_query,
                         const struct hr_sdk_answer *a, const char *what);
/* GET that must answer 200 with a JSON object holding `key` (headroomd's
 * answer there); NULL with the error set otherwise. */
json_t *hr_sdk_get_json(const hr_client *c, const char *path, const char *key);

/* A config: defaults, `path` (NULL = none), HEADROOM_* variables, validated.
 * A bad variable is an error when it is in `uses` (NULL: all of them, as
 * headroomd reads them); another is not (the caller does not read it;
 * headroomd would refuse it): its message goes to `ignored` ("" for none),
 * or without `ignored` to a WARNING line. */
int hr_sdk_load_config(struct hr_config *cfg, const char *path, const char *const *uses, char *ignored,
                       size_t ignoredlen, char *err, size_t errlen);
/* The variables an offline client reads (plugin_dir, log_level), those an
 * attached one sends (the tokens), and those giving a daemon's address
 * (hr_daemon_setup). NULL-terminated. */
extern const char *const hr_sdk_offline_env[];
extern const char *const hr_sdk_attached_env[];
extern const char *const hr_sdk_address_env[];
/* malloc'd JSON text of `v` (stolen), or NULL with HEADROOM_ENOMEM set. */
char *hr_sdk_dump(json_t *v);
#endif
