#!/bin/sh
# t/layers_test.sh — TAP: the layering rules hold in the source tree.
#   - no "../" include anywhere in src/, lib/ or plugins/ (each layer is
#     reached through the include path the build gives it);
#   - a plugin includes only the public headers (include/), lib/, and
#     headers of its own directory — never the host's src/ internals;
#   - lib/ includes nothing from src/ or plugins/ (both may use it);
#   - every wire-format question is answered in src/api/: no file elsewhere
#     tests HR_PROVIDER_OPENAI / HR_PROVIDER_ANTHROPIC or a route literal.
here=$(cd "$(dirname "$0")" && pwd)
top=${top_srcdir:-$here/..}
cd "$top" || { echo "Bail out! no source tree at $top"; exit 1; }
n=0
fail=0
check() { # check DESCRIPTION OFFENDERS
    n=$((n + 1))
    if [ -z "$2" ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        printf '%s\n' "$2" | sed 's/^/# /'
        fail=1
    fi
}

check 'no "../" includes in src/, lib/, plugins/' \
    "$(grep -rn '#include *"\.\./' src lib plugins 2>/dev/null)"

bad=""
for f in $(find plugins -name '*.[ch]'); do
    dir=$(dirname "$f")
    for h in $(sed -n 's/^#include *"\([^"]*\)".*/\1/p' "$f"); do
        [ -f "$dir/$h" ] || [ -f "lib/$h" ] || [ -f "include/$h" ] || bad="$bad$f includes \"$h\" (not in include/, lib/ or $dir/)
"
    done
done
check 'plugins include only include/, lib/ and their own headers' "$bad"

bad=""
for f in lib/*.[ch]; do
    for h in $(sed -n 's/^#include *"\([^"]*\)".*/\1/p' "$f"); do
        [ -f "lib/$h" ] || [ -f "include/$h" ] || bad="$bad$f includes \"$h\"
"
    done
done
check 'lib/ depends on nothing but itself and include/' "$bad"

check 'only src/api/ tells providers apart' \
    "$(grep -rnE 'HR_PROVIDER_(OPENAI|ANTHROPIC)|"/v1/(chat/completions|messages|responses)"' src --include='*.c' | grep -v '^src/api/')"

echo "1..$n"
exit $fail
