/* src/cli_wrap.c — `headroom wrap`: run a coding agent through headroomd.
 * Uses the headroomd already listening on the port, or starts one in the
 * background for the session (install_mode wrapped, HEADROOM_STACK
 * wrap_<agent>), points the agent at it the way that agent is configured,
 * runs it in the foreground with the terminal, and returns its exit code
 * after stopping the daemon it started (doc/telemetry.md, headroom(1)).
 * Only libheadroom's public API: hr_daemon_setup says where a daemon of the
 * config listens and keeps its state. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include "cli.h"
#include "headroom/headroom.h"
#include "uninstalled.h"

#define MAX_ENV 8

#ifndef HR_SYSCONFDIR
#define HR_SYSCONFDIR "/usr/local/etc"
#endif
#ifndef HR_SRCCONFDIR
#define HR_SRCCONFDIR ""
#endif

struct agent {
    const char *name;    /* as typed after `wrap`, and the executable */
    const char *product; /* for messages */
    unsigned openai : 1, openai_api_base : 1, anthropic : 1, anthropic_headers : 1;
    unsigned codex_config : 1; /* also `-c openai_base_url="…"` first in its arguments */
};

/* How each agent finds its API: Claude Code reads ANTHROPIC_BASE_URL and
 * sends ANTHROPIC_CUSTOM_HEADERS ("Name: value" lines); Codex CLI reads
 * OPENAI_BASE_URL up to 0.10x, and from about 0.17x only its openai_base_url
 * config key, given here as `-c openai_base_url="…"` (older versions ignore
 * the key, newer ones the variable: both are set); aider (through litellm)
 * OPENAI_API_BASE / OPENAI_BASE_URL
 * and ANTHROPIC_BASE_URL. Agents without a header variable are counted under
 * the daemon's HEADROOM_STACK when wrap started it. */
static const struct agent AGENTS[] = {
    {"claude", "Claude Code", 0, 0, 1, 1, 0},
    {"codex", "Codex CLI", 1, 0, 0, 0, 1},
    {"aider", "aider", 1, 1, 1, 0, 0},
};
static const struct agent GENERIC = {"generic", "the command", 1, 1, 1, 1, 0};

/* ------------------------------------------------------------ config */

/* Where wrap looks for a config when given none (-c, $HEADROOM_CONFIG):
 * the user's, headroom.conf in the state directory ($HEADROOM_WORKSPACE_DIR,
 * else ~/.headroom; empty when the HEADROOM_* settings do not read), then
 * the one `make install` put in sysconfdir; an uninstalled headroom looks at
 * its source tree's conf/headroom.conf instead, as it uses that tree's
 * plugins and prices, so an older install never shadows the build. */
struct conf_paths {
    char user[PATH_MAX], site[PATH_MAX];
};

static void default_conf_paths(struct conf_paths *c)
{
    c->user[0] = '\0';
    char *text = hr_daemon_setup(NULL);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    const char *state = json_string_value(json_object_get(j, "state_root"));
    if (state && *state) snprintf(c->user, sizeof c->user, "%s/headroom.conf", state);
    json_decref(j);
    hr_free(text);
    if (*HR_SRCCONFDIR && hr_running_uninstalled()) snprintf(c->site, sizeof c->site, "%s/headroom.conf", HR_SRCCONFDIR);
    else snprintf(c->site, sizeof c->site, "%s/headroom/headroom.conf", HR_SYSCONFDIR);
}

static int is_file(const char *path)
{
    struct stat st;
    return *path && !stat(path, &st) && S_ISREG(st.st_mode);
}

static void usage(FILE *out)
{
    struct conf_paths c;
    default_conf_paths(&c);
    fprintf(out,
            "usage: headroom wrap [--print-env] [--port N] [-c FILE] AGENT [-- AGENT-ARGS...]\n"
            "       headroom wrap [--print-env] [--port N] [-c FILE] -- COMMAND [ARGS...]\n"
            "\n"
            "Run a coding agent through headroomd: AGENT is claude (Claude Code), codex (Codex CLI) or aider;\n"
            "`-- COMMAND` runs any other program with both OpenAI and Anthropic base URLs set.\n"
            "A headroomd already listening on the port is used; otherwise one is started for the session\n"
            "and stopped when the agent exits. The agent's exit code is wrap's exit code.\n"
            "wrap's options go before AGENT: what follows it is the agent's (as with env and sudo), so\n"
            "`headroom wrap claude -c team.conf` runs `claude -c team.conf` (--print-env says so).\n"
            "\n"
            "  --print-env   print the agent's environment as shell `export` lines instead of running it\n"
            "  --port N      headroomd port on 127.0.0.1 (default: $HEADROOM_PORT, else the config's port, else 8787)\n"
            "  -c FILE       the config whose port wrap uses and that a headroomd wrap starts reads; default\n"
            "                $HEADROOM_CONFIG, else the first that exists of %s%s%s;\n"
            "                with none, that headroomd only proxies and counts (no compression, no savings file)\n"
            "\n"
            "Environment: HEADROOMD names the headroomd binary (default: next to headroom, else on PATH).\n",
            c.user, *c.user ? " and " : "", c.site);
}

/* ------------------------------------------------------------------ http */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

struct buf {
    char data[4096];
    size_t len;
};

static size_t keep(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t k = size * n, room = sizeof b->data - 1 - b->len;
    memcpy(b->data + b->len, p, k < room ? k : room);
    b->len += k < room ? k : room;
    b->data[b->len] = '\0';
    return size * n;
}

/* HTTP status of GET url (0 when nothing answers); the body's start in b. */
static long http_get(const char *url, struct buf *b)
{
    CURL *c = curl_easy_init();
    if (!c) return 0;
    long status = 0;
    if (b) b->len = 0, b->data[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, b ? keep : discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* 1: a headroomd answers on the port; 0: nothing listens; -1: something else does. */
static int probe(int port)
{
    char url[64];
    struct buf b;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health", port);
    long st = http_get(url, &b);
    if (!st) return 0;
    json_t *j = json_loads(b.data, 0, NULL);
    int ours = st == 200 && json_is_object(j) && json_is_string(json_object_get(j, "version")) &&
               json_is_string(json_object_get(j, "status"));
    json_decref(j);
    return ours ? 1 : -1;
}

/* ----------------------------------------------------------- processes */

/* Path of the executable `name` on PATH (or name itself when it has a '/'),
 * or NULL. Then *noexec (when asked for) is the first file of that name
 * found that is not executable, or NULL: the shell's "permission denied". */
static char *find_exe(const char *name, char **noexec)
{
    struct stat st;
    if (noexec) *noexec = NULL;
    if (strchr(name, '/')) {
        if (!stat(name, &st) && S_ISREG(st.st_mode)) {
            if (!access(name, X_OK)) return strdup(name);
            if (noexec) *noexec = strdup(name);
        }
        return NULL;
    }
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    char full[PATH_MAX];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(full, sizeof full, "%.*s%s%s", (int)n, p, n ? "/" : "", name);
        if (!stat(full, &st) && S_ISREG(st.st_mode)) {
            if (!access(full, X_OK)) {
                if (noexec) free(*noexec), *noexec = NULL;
                return strdup(full);
            }
            if (noexec && !*noexec) *noexec = strdup(full);
        }
        p += n;
        if (*p == ':') p++;
    }
    return NULL;
}

/* Where a headroomd of `conf` listens and keeps its state, or NULL (said why). */
static json_t *daemon_setup(const char *conf)
{
    char *text = hr_daemon_setup(conf);
    if (!text) {
        fprintf(stderr, "headroom wrap: %s\n", hr_last_error());
        if (!strncmp(hr_last_error(), "environment variable ", 21)) /* HEADROOM_PORT: where headroomd listens */
            fprintf(stderr, "headroom wrap: correct or unset it (headroomd(8) ENVIRONMENT), or give wrap the port "
                    "with --port\n");
        return NULL;
    }
    json_t *j = json_loads(text, 0, NULL);
    hr_free(text);
    if (json_is_object(j)) return j;
    fprintf(stderr, "headroom wrap: libheadroom gave an unreadable setup\n");
    json_decref(j);
    return NULL;
}

/* headroomd: $HEADROOMD, else next to this program, else on PATH. */
static char *daemon_path(void)
{
    const char *env = getenv("HEADROOMD");
    if (env && *env) return strdup(env);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            char cand[PATH_MAX + 16];
            snprintf(cand, sizeof cand, "%.*s/headroomd", (int)(slash - self), self);
            if (!access(cand, X_OK)) return strdup(cand);
            /* libtool's uninstalled layout: src/.libs/headroom next to src/headroomd */
            snprintf(cand, sizeof cand, "%.*s/../headroomd", (int)(slash - self), self);
            if (!access(cand, X_OK)) return strdup(cand);
        }
    }
    return find_exe("headroomd", NULL);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* Start headroomd in its own process group (a Ctrl-C meant for the agent
 * does not reach it; wrap stops it after the agent), logging to
 * <state>/wrap-headroomd.log. Returns its pid once /readyz says 200, or -1;
 * *drain_s: the seconds it gives requests in flight after SIGTERM.
 * On Linux it gets SIGTERM when wrap dies, however wrap dies (SIGKILL
 * included), so it drains, writes its figures and stops instead of being
 * left running with nobody to stop it. */
static pid_t start_daemon(const char *exe, int port, const char *conf, const char *stack, int *drain_s)
{
    json_t *setup = daemon_setup(conf);
    if (!setup) return -1;
    /* A HEADROOM_* value only headroomd reads (HEADROOM_BUDGET=x): the one
     * started here would exit at once; a running one wrap uses is not ours. */
    const char *bad = json_string_value(json_object_get(setup, "env_error"));
    if (bad) {
        fprintf(stderr, "headroom wrap: %s: the headroomd wrap would start refuses it: correct or unset it "
                "(headroomd(8) ENVIRONMENT)\n", bad);
        json_decref(setup);
        return -1;
    }
    json_t *drain = json_object_get(setup, "shutdown_timeout");
    if (json_is_integer(drain) && json_integer_value(drain) >= 0) *drain_s = (int)json_integer_value(drain);
    const char *state = json_string_value(json_object_get(setup, "state_root"));
    mkdir(state, 0700);
    char log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/wrap-headroomd.log", state);
    json_decref(setup);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        fprintf(stderr, "headroom wrap: cannot open %s: %s (is HEADROOM_WORKSPACE_DIR writable?)\n", log_path, strerror(errno));
        return -1;
    }
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    pid_t wrap_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "headroom wrap: cannot start headroomd: %s\n", strerror(errno));
        close(log_fd);
        return -1;
    }
    if (pid == 0) {
#ifdef __linux__
        /* The signal follows the forking thread, wrap's only one; if wrap
         * died before this, the daemon is not started at all. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) == 0 && getppid() != wrap_pid) _exit(0);
#else
        (void)wrap_pid;
#endif
        setpgid(0, 0);
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0) dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        setenv("HEADROOM_INSTALL_MODE", "wrapped", 1);
        setenv("HEADROOM_STACK", stack, 1);
        const char *argv[] = {exe, "--host", "127.0.0.1", "--port", port_s, conf ? "-c" : NULL, conf, NULL};
        execv(exe, (char *const *)argv);
        dprintf(2, "headroom wrap: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(log_fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
    double deadline = mono() + 20;
    while (mono() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "headroom wrap: headroomd exited (%s %d) before it was ready; see %s\n",
                    WIFEXITED(status) ? "code" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), log_path);
            return -1;
        }
        if (http_get(url, NULL) == 200) return pid;
        nap_ms(50);
    }
    fprintf(stderr, "headroom wrap: headroomd did not become ready on port %d within 20 s; see %s\n", port, log_path);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* SIGTERM, then as long as the daemon may drain (drain_s, its
 * shutdown_timeout) and 15 s more to write what it holds (the metrics_db
 * rows, the savings file); only then SIGKILL. A shorter wait killed a
 * daemon still finishing a request the agent had left running, and with it
 * that request's figures. */
static void stop_daemon(pid_t pid, int drain_s)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    int grace_s = drain_s + 15;
    double deadline = mono() + grace_s;
    while (mono() < deadline) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return;
        nap_ms(20);
    }
    fprintf(stderr, "headroom wrap: headroomd (pid %ld) did not stop within %d s of SIGTERM (shutdown_timeout %d s + 15 s); killing it\n",
            (long)pid, grace_s, drain_s);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static volatile sig_atomic_t agent_pid, got_signal;

/* Before the agent runs, a signal ends the session; while it runs, the
 * signals sent to wrap alone are passed on to it. */
static void on_signal(int sig)
{
    got_signal = sig;
    if (agent_pid > 0) kill((pid_t)agent_pid, sig);
}

/* ------------------------------------------------------------ environment */

struct env {
    const char *name[MAX_ENV];
    char *value[MAX_ENV];
    size_t n;
};

static void env_add(struct env *e, const char *name, const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(fmt) + strlen(a) + strlen(b) + 1;
    char *v = malloc(len);
    if (!v) return;
    snprintf(v, len, fmt, a, b);
    e->name[e->n] = name;
    e->value[e->n++] = v;
}

/* Whether "Name: value" lines (ANTHROPIC_CUSTOM_HEADERS) name X-Headroom-Stack. */
static int names_stack(const char *headers)
{
    static const char NAME[] = "x-headroom-stack";
    for (const char *p = headers; *p;) {
        size_t n = strcspn(p, "\n");
        const char *q = p, *end = p + n;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        const char *colon = memchr(q, ':', (size_t)(end - q));
        if (colon) {
            const char *k = colon;
            while (k > q && (k[-1] == ' ' || k[-1] == '\t')) k--;
            if ((size_t)(k - q) == sizeof NAME - 1 && !strncasecmp(q, NAME, sizeof NAME - 1)) return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

static void build_env(struct env *e, const struct agent *a, int port, const char *stack)
{
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    if (a->openai) env_add(e, "OPENAI_BASE_URL", "%s%s", base, "/v1");
    if (a->openai_api_base) env_add(e, "OPENAI_API_BASE", "%s%s", base, "/v1");
    if (a->anthropic) env_add(e, "ANTHROPIC_BASE_URL", "%s%s", base, "");
    if (a->anthropic_headers) {
        /* Keep the user's own custom headers (one per line), and their own
         * X-Headroom-Stack when they give one: a second would not count
         * (the proxy takes the first) and only confuse. */
        const char *old = getenv("ANTHROPIC_CUSTOM_HEADERS");
        char hdr[128];
        snprintf(hdr, sizeof hdr, "X-Headroom-Stack: %s", stack);
        if (old && names_stack(old)) env_add(e, "ANTHROPIC_CUSTOM_HEADERS", "%s%s", old, "");
        else if (old && *old) env_add(e, "ANTHROPIC_CUSTOM_HEADERS", "%s\n%s", old, hdr);
        else env_add(e, "ANTHROPIC_CUSTOM_HEADERS", "%s%s", hdr, "");
    }
}

static void env_free(struct env *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->value[i]);
}

static void print_env(const struct env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        printf("export %s='", e->name[i]);
        for (const char *p = e->value[i]; *p; p++)
            if (*p == '\'') fputs("'\\''", stdout);
            else putchar(*p);
        printf("'\n");
    }
}

/* ------------------------------------------------------------------ main */

/* The port headroomd would use: the config file's `port`, then
 * HEADROOM_PORT, as headroomd reads them (--port overrides both). */
static int configured_port(const char *conf, int *port)
{
    json_t *setup = daemon_setup(conf);
    if (!setup) return -1;
    *port = (int)json_integer_value(json_object_get(setup, "port"));
    json_decref(setup);
    return 0;
}

/* --print-env runs no agent, so what follows its name is used by nobody. A
 * wrap option there (`--print-env claude -c team.conf`) is the agent's by the
 * rule env(1) and sudo(8) follow, and the exports silently had the default
 * port: say so, and where it goes. Options before AGENT: argv[1..opts_end);
 * the agent's name (or command) argv[agent_at]; its arguments from `rest`. */
static void unused_args(int argc, char **argv, int opts_end, int agent_at, int rest)
{
    if (rest >= argc) return;
    char mine[1024] = "", all[1024] = "";
    size_t nm = 0, na = 0;
    for (int k = rest; k < argc; k++) {
        const char *w = argv[k];
        if ((!strcmp(w, "-c") || !strcmp(w, "--config") || !strcmp(w, "--port")) && k + 1 < argc) {
            nm += (size_t)snprintf(mine + nm, nm < sizeof mine ? sizeof mine - nm : 0, "%s%s %s", nm ? " " : "", w,
                                   argv[k + 1]);
            k++;
        }
    }
    for (int k = rest; k < argc; k++)
        na += (size_t)snprintf(all + na, na < sizeof all ? sizeof all - na : 0, "%s%s", na ? " " : "", argv[k]);
    if (!nm) {
        fprintf(stderr, "headroom wrap: --print-env runs no %s, so '%s' after it is not used\n", argv[agent_at], all);
        return;
    }
    fprintf(stderr, "headroom wrap: '%s' after '%s' is %s's, not wrap's, and --print-env runs no %s: it was not "
            "used (these exports are without it). Meant for wrap? Options go before the agent's name: headroom wrap",
            mine, argv[agent_at], argv[agent_at], argv[agent_at]);
    for (int k = 1; k < opts_end; k++) fprintf(stderr, " %s", argv[k]);
    fprintf(stderr, " %s%s %s\n", mine, agent_at > opts_end ? " --" : "", argv[agent_at]);
}

static int parse_port(const char *s, int *port)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 65535) return -1;
    *port = (int)v;
    return 0;
}

int hr_cli_wrap(int argc, char **argv)
{
    int print = 0, port = 0, i = 1;
    const char *conf = getenv("HEADROOM_CONFIG");
    if (conf && !*conf) conf = NULL;
    struct conf_paths dflt;
    for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return HR_EXIT_OK;
        } else if (!strcmp(argv[i], "--print-env")) {
            print = 1;
        } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            if (parse_port(argv[++i], &port)) {
                fprintf(stderr, "headroom wrap: --port '%s' is not a port (1-65535)\n", argv[i]);
                return HR_EXIT_USAGE;
            }
        } else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            conf = argv[++i];
        } else if (!strcmp(argv[i], "--port") || !strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
            fprintf(stderr, "headroom wrap: %s needs a value (%s); run 'headroom wrap --help'\n", argv[i],
                    strcmp(argv[i], "--port") ? "a headroom.conf" : "a port, 1-65535");
            return HR_EXIT_USAGE;
        } else {
            fprintf(stderr, "headroom wrap: unknown option '%s'; run 'headroom wrap --help'\n", argv[i]);
            return HR_EXIT_USAGE;
        }
    }
    /* None given: the user's own, else the installed one (see default_conf_paths). */
    int no_conf = 0;
    if (!conf) {
        default_conf_paths(&dflt);
        if (is_file(dflt.user)) conf = dflt.user;
        else if (is_file(dflt.site)) conf = dflt.site;
        else no_conf = 1;
    }
    if (!port) {
        /* A config that does not parse (said as file:line:col) or a bad HEADROOM_* value is
         * not a command-line error: exit 1, as compress and doctor. */
        if (configured_port(conf, &port)) return HR_EXIT_RUNTIME;
        if (!port) {
            fprintf(stderr, "headroom wrap: the configured port is 0 (any free port); give wrap a fixed one with --port\n");
            return HR_EXIT_USAGE;
        }
    }
    const struct agent *a = NULL;
    int opts_end = i, agent_at = i; /* wrap's own options are argv[1..opts_end) */
    if (i < argc && !strcmp(argv[i], "--")) {
        a = &GENERIC;
        i++;
        agent_at = i;
        if (i >= argc) {
            fprintf(stderr, "headroom wrap: `--` must be followed by the command to run\n");
            return HR_EXIT_USAGE;
        }
    } else if (i < argc) {
        for (size_t k = 0; k < sizeof AGENTS / sizeof *AGENTS; k++)
            if (!strcmp(argv[i], AGENTS[k].name)) a = &AGENTS[k];
        if (!a) {
            fprintf(stderr, "headroom wrap: unknown agent '%s' (claude, codex or aider; `headroom wrap -- COMMAND` runs any other)\n",
                    argv[i]);
            return HR_EXIT_USAGE;
        }
        i++;
        if (i < argc && !strcmp(argv[i], "--")) i++;
    } else {
        usage(stderr);
        return HR_EXIT_USAGE;
    }
    char stack[80];
    snprintf(stack, sizeof stack, "wrap_%s", a->name);
    struct env e = {.n = 0};
    build_env(&e, a, port, stack);
    if (print) {
        print_env(&e);
        env_free(&e);
        unused_args(argc, argv, opts_end, agent_at, a == &GENERIC ? agent_at + 1 : i);
        return HR_EXIT_OK;
    }
    /* What runs: the command after `--`, or the agent by its own name. */
    char **agent_argv = calloc((size_t)(argc - i) + 4, sizeof *agent_argv);
    if (!agent_argv) return HR_EXIT_RUNTIME;
    size_t n = 0;
    char codex_base[96];
    agent_argv[n++] = a == &GENERIC ? argv[i] : (char *)a->name;
    if (a->codex_config) {
        snprintf(codex_base, sizeof codex_base, "openai_base_url=\"http://127.0.0.1:%d/v1\"", port);
        agent_argv[n++] = (char *)"-c";
        agent_argv[n++] = codex_base;
    }
    for (int k = a == &GENERIC ? i + 1 : i; k < argc; k++) agent_argv[n++] = argv[k];
    char *noexec;
    char *exe = find_exe(agent_argv[0], &noexec);
    if (!exe) {
        /* As a shell: 126 for a file that is there but cannot run, 127 for none. */
        struct stat st;
        int missing = !noexec;
        if (noexec && strchr(agent_argv[0], '/'))
            fprintf(stderr, "headroom wrap: %s is not executable: chmod +x it\n", noexec);
        else if (noexec)
            fprintf(stderr, "headroom wrap: found %s but it is not executable: chmod +x it (or put an executable '%s' "
                    "earlier on PATH)\n", noexec, agent_argv[0]);
        else if (strchr(agent_argv[0], '/') && !stat(agent_argv[0], &st))
            fprintf(stderr, "headroom wrap: '%s' is not a file that can run\n", agent_argv[0]), missing = 0;
        else if (strchr(agent_argv[0], '/'))
            fprintf(stderr, "headroom wrap: '%s': %s\n", agent_argv[0], strerror(errno));
        else
            fprintf(stderr, "headroom wrap: '%s' not found on PATH%s%s%s\n", agent_argv[0], a == &GENERIC ? "" : " (is ",
                    a == &GENERIC ? "" : a->product, a == &GENERIC ? "" : " installed?)");
        free(noexec);
        free(agent_argv);
        env_free(&e);
        return missing ? 127 : 126;
    }
    /* A script without "#!" runs with /bin/sh, as execvp and shells run it. */
    char **sh_argv = calloc(n + 2, sizeof *sh_argv);
    if (!sh_argv) {
        free(exe);
        free(agent_argv);
        env_free(&e);
        return HR_EXIT_RUNTIME;
    }
    sh_argv[0] = (char *)"/bin/sh";
    sh_argv[1] = exe;
    for (size_t k = 1; k < n; k++) sh_argv[k + 1] = agent_argv[k];

    struct sigaction on = {.sa_handler = on_signal}, ign = {.sa_handler = SIG_IGN}, old_int, old_quit, old_term, old_hup;
    sigemptyset(&on.sa_mask);
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &on, &old_int);
    sigaction(SIGQUIT, &on, &old_quit);
    sigaction(SIGTERM, &on, &old_term);
    sigaction(SIGHUP, &on, &old_hup);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pid_t daemon = 0;
    int drain_s = 30; /* headroomd's default shutdown_timeout, if the setup does not say */
    int code = HR_EXIT_RUNTIME;
    int found = probe(port);
    if (found < 0) {
        fprintf(stderr, "headroom wrap: port %d answers, but not as headroomd; pick another with --port\n", port);
        goto out;
    }
    if (!found) {
        char *dexe = daemon_path();
        if (!dexe) {
            fprintf(stderr, "headroom wrap: headroomd not found (set HEADROOMD or put it on PATH)\n");
            goto out;
        }
        if (no_conf)
            fprintf(stderr, "headroom wrap: no config (none given with -c or $HEADROOM_CONFIG, none at %s%s%s), so the "
                    "headroomd started for this session only proxies and counts requests: no compression, no savings "
                    "file; for those, give one with -c FILE or HEADROOM_CONFIG%s%s\n",
                    dflt.user, *dflt.user ? " or " : "", dflt.site, *dflt.user ? ", or put one at " : "", dflt.user);
        daemon = start_daemon(dexe, port, conf, stack, &drain_s);
        free(dexe);
        if (daemon < 0) {
            daemon = 0;
            goto out;
        }
    }

    if (got_signal) {
        code = 128 + got_signal;
        goto out;
    }
    /* The agent owns the terminal: the keyboard's signals reach it (it is
     * in the foreground group) and wrap ignores them, waiting for its exit. */
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGQUIT, &ign, NULL);
    pid_t child = fork();
    if (child == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        for (size_t k = 0; k < e.n; k++) setenv(e.name[k], e.value[k], 1);
        execv(exe, agent_argv);
        if (errno == ENOEXEC) {
            execv(sh_argv[0], sh_argv);
            fprintf(stderr, "headroom wrap: %s has no #! line and /bin/sh cannot run it: %s\n", exe, strerror(errno));
            _exit(126);
        }
        int err = errno;
        fprintf(stderr, "headroom wrap: cannot run %s: %s\n", exe, strerror(err));
        _exit(err == ENOENT ? 127 : 126);
    }
    if (child < 0) {
        fprintf(stderr, "headroom wrap: cannot start %s: %s\n", agent_argv[0], strerror(errno));
    } else {
        agent_pid = child;
        int status = 0;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
        agent_pid = 0;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
out:
    stop_daemon(daemon, drain_s);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    curl_global_cleanup();
    free(exe);
    free(sh_argv);
    free(agent_argv);
    env_free(&e);
    return code;
}
