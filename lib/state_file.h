/* state_file.h — naming state files, shared by the host and the sinks that
 * keep one (metrics_db, savings_file): where a sink's file goes by default,
 * and the name a damaged file is moved aside to. */
#ifndef HR_STATE_FILE_H
#define HR_STATE_FILE_H
#include <stddef.h>
#include <headroom/plugin.h>

/* `p` with a leading "~" or "~/" replaced by $HOME (else the user's home
 * from the password database); malloc'd, NULL when out of memory. */
char *hr_expand_tilde(const char *p);

/* A sink's file: `conf_path` when set (tilde expanded), else `name` in the
 * host's state root; before ABI 1.2 (no hr_host.state_dir) the root by the
 * same rule, by hand: $HEADROOM_WORKSPACE_DIR, else ~/.headroom. malloc'd. */
char *hr_state_file(const struct hr_host *host, const char *conf_path, const char *name);

/* A name for `path` moved aside as damaged, "<path>.corrupt-<UTC stamp of
 * now>", with "-N" added while that name is taken (every earlier casualty
 * is kept). 0 with `dest` filled, -EEXIST after 100 taken names, or
 * -EINVAL without a buffer. */
int hr_corrupt_name(const char *path, double now, char *dest, size_t destlen);
#endif
