/* bad_abi.c — a plugin built for a future ABI major: headroomd must refuse it. */
#include <headroom/plugin.h>

static int init(const struct hr_host *h, struct hr_instance *self, const struct hr_conf *c, void **state)
{
    (void)h, (void)self, (void)c;
    *state = 0;
    return 0;
}

static int apply(void *state, struct hr_request *req)
{
    (void)state, (void)req;
    return 0;
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    .struct_size = sizeof(struct headroom_plugin),
    .abi_major = HR_ABI_MAJOR + 1,
    .abi_minor = 0,
    .name = "bad_abi",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "9.9.9",
    .init = init,
    .apply = apply,
};
