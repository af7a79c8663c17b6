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
const char *hr_state_dir_check(char *buf, unsigned len);
#endif
