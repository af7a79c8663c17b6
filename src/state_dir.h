/* state_dir.h — the directory headroomd keeps state in: budget, savings,
 * request records. $HEADROOM_WORKSPACE_DIR (a leading ~ expanded), else
 * ~/.headroom. Resolved once; the directory may not exist yet. */
#ifndef HR_STATE_DIR_H
#define HR_STATE_DIR_H
const char *hr_state_dir(void);
/* A state file write: rc 0 or a negative errno. Counted per failure
 * (headroom_state_write_errors_total); the last result is what /health shows. */
void hr_state_write_result(const char *what, int rc);
unsigned long long hr_state_write_errors(void);
/* "ok", or why the state directory cannot take writes (for /health). */
const char *hr_state_dir_health(char *buf, unsigned len);
/* 0 when `dir` (NULL = hr_state_dir()) is a writable directory, or does not
 * exist yet and can be created (its nearest existing parent is writable).
 * Tested by creating and removing a file, so it holds for root too.
 * Otherwise -errno and `why` says what is wrong and how to fix it. */
int hr_state_dir_check(const char *dir, char *why, size_t whylen);
#endif
