/* state_dir.h — the directory headroomd keeps state in: budget, savings,
 * request records. $HEADROOM_WORKSPACE_DIR (a leading ~ expanded), else
 * ~/.headroom. Resolved once; the directory may not exist yet. */
#ifndef HR_STATE_DIR_H
#define HR_STATE_DIR_H
const char *hr_state_dir(void);
#endif
