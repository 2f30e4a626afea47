#!/usr/bin/python3
"""Static checks of the repository's Dockerfile (no Docker engine needed).

What the image must be: multi-stage on Debian 12; the build stage compiles
with the -dev packages and -DHERALD_TESTS=OFF; the final stage starts from
debian:12(-slim), installs only runtime libraries (no compilers, no -dev
packages), copies just the binary from the build stage, runs as a numeric
non-root user and starts `herald run --config /etc/herald/herald.conf`.

With HERALD_BIN set to a built herald binary, the shared libraries it links
(readelf NEEDED) are mapped to Debian packages (dpkg -S) and each must be
installed by the final stage or be part of the base image.

The checker proves it can fail: it runs itself against mutated copies of the
Dockerfile (root user, build tools in the final stage, shell-form
entrypoint, ...) and each mutation must be caught.

Usage: check_dockerfile.py [--dockerfile PATH] [--dockerignore PATH]
Exit status 0 when every check passes, 1 otherwise.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BUILD_DEPS = ["cmake", "gcc", "pkg-config", "librdkafka-dev", "libcurl4-openssl-dev",
              "libssl-dev", "libhiredis-dev", "libcjson-dev", "libmicrohttpd-dev"]
RUNTIME_LIBS = ["librdkafka1", "libcurl4", "libssl3", "libhiredis0.14", "libcjson1",
                "libmicrohttpd12", "ca-certificates"]
# Packages every debian:12-slim image has (essential, or needed by apt).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5"}
BUILD_TOOL = re.compile(r"^(cmake|gcc(-\d+)?|g\+\+(-\d+)?|cpp(-\d+)?|clang(-\d+)?|make|"
                        r"pkg-config|pkgconf|build-essential|binutils|git|.*-dev)$")
IMAGE = re.compile(r"^debian:12(-slim)?(@sha256:[0-9a-f]{64})?$")
ENTRYPOINT = [["herald", "run"], ["/usr/local/bin/herald", "run"], ["/usr/bin/herald", "run"]]
CMD = ["--config", "/etc/herald/herald.conf"]


def parse(text):
    """Dockerfile text -> list of (instruction, arguments), continuations joined."""
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if cur and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip():
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        cur = ""
    if cur.strip():
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(instrs):
    """Split instructions at FROM: list of dicts {image, name, body}."""
    result = []
    for ins, args in instrs:
        if ins == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append({"image": words[0], "name": name, "body": []})
        elif result:
            result[-1]["body"].append((ins, args))
    return result


def apt_packages(run_args):
    """Packages named by the apt-get install commands of a RUN line."""
    pkgs = []
    for cmd in re.split(r"&&|;|\|\|", run_args):
        try:
            words = shlex.split(cmd)
        except ValueError:
            words = cmd.split()
        while words and "=" in words[0]:
            words.pop(0)  # DEBIAN_FRONTEND=noninteractive
        if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
            after = words[words.index("install") + 1:]
            pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def exec_form(args):
    try:
        v = json.loads(args)
    except ValueError:
        return None
    return v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None


def check(dockerfile_text, dockerignore_text, herald_bin=None):
    """Return a list of (check name, failure message or None)."""
    results = []

    def ok(name, cond, msg):
        results.append((name, None if cond else msg))

    st = stages(parse(dockerfile_text))
    ok("multi-stage", len(st) >= 2, f"expected a build stage and a runtime stage, found {len(st)} FROM")
    if not st:
        return results
    names = {s["name"] for s in st if s["name"]}
    for s in st:
        ok(f"base image {s['image']}", IMAGE.match(s["image"]) or s["image"] in names,
           f"FROM \"{s['image']}\": stages must start from debian:12 or debian:12-slim")
    build, final = st[0], st[-1]

    build_runs = " && ".join(a for i, a in build["body"] if i == "RUN")
    build_pkgs = set()
    for i, a in build["body"]:
        if i == "RUN":
            build_pkgs.update(apt_packages(a))
    missing = [p for p in BUILD_DEPS if p not in build_pkgs]
    ok("build stage installs the -dev packages", not missing,
       f"build stage does not install {', '.join(missing)}")
    ok("build stage configures without tests", re.search(r"cmake\b.*-DHERALD_TESTS=OFF", build_runs),
       "build stage must run cmake with -DHERALD_TESTS=OFF")
    ok("build stage builds", re.search(r"cmake\s+--build", build_runs),
       "build stage must run cmake --build")

    final_pkgs = []
    for i, a in final["body"]:
        if i == "RUN":
            final_pkgs += apt_packages(a)
            if "apt-get install" in a or "apt install" in a:
                ok("final stage apt without recommends", "--no-install-recommends" in a,
                   "final stage apt-get install must use --no-install-recommends")
                ok("final stage cleans apt lists", "rm -rf /var/lib/apt/lists" in a,
                   "final stage must remove /var/lib/apt/lists in the same RUN")
    ok("final stage starts from slim", final["image"].startswith("debian:12-slim"),
       f"final stage should start from debian:12-slim, not \"{final['image']}\"")
    tools = sorted(p for p in final_pkgs if BUILD_TOOL.match(p))
    ok("no build tools in final stage", not tools,
       f"final stage installs build tools: {', '.join(tools)}")
    missing = [p for p in RUNTIME_LIBS if p not in final_pkgs]
    ok("final stage installs the runtime libraries", not missing,
       f"final stage does not install {', '.join(missing)}")

    copies = [a for i, a in final["body"] if i in ("COPY", "ADD")]
    from_build = [a for a in copies if re.search(r"--from=(\S+)", a)]
    ok("final stage copies the binary from the build stage",
       any(re.search(r"\bherald\b", a) for a in from_build),
       "final stage must COPY --from=<build stage> the herald binary")
    ok("final stage copies nothing else from the context",
       len(from_build) == len(copies),
       "final stage COPY/ADD without --from brings build-context files into the runtime image")

    users = [a for i, a in final["body"] if i == "USER"]
    user = users[-1] if users else ""
    m = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    ok("numeric non-root USER", m and int(m.group(1)) != 0 and (m.group(2) is None or int(m.group(2)) != 0),
       f"final stage must end with a numeric non-root USER uid[:gid], found \"{user or 'none'}\"")

    eps = [a for i, a in final["body"] if i == "ENTRYPOINT"]
    ep = exec_form(eps[-1]) if eps else None
    ok("ENTRYPOINT herald run", ep in ENTRYPOINT,
       f"ENTRYPOINT must be the exec form [\"herald\", \"run\"], found {eps[-1] if eps else 'none'}")
    cmds = [a for i, a in final["body"] if i == "CMD"]
    ok("CMD --config", cmds and exec_form(cmds[-1]) == CMD,
       f"CMD must be {json.dumps(CMD)}, found {cmds[-1] if cmds else 'none'}")

    ignored = {l.strip() for l in dockerignore_text.splitlines() if l.strip() and not l.startswith("#")}
    ok(".dockerignore excludes .git and build", {".git", "build"} <= ignored,
       ".dockerignore must exclude .git and build")

    if herald_bin:
        results += check_binary_libs(herald_bin, final_pkgs)
    return results


def check_binary_libs(herald_bin, final_pkgs):
    """Each library the binary links must come from a package the final stage installs."""
    results = []
    try:
        dyn = subprocess.run(["readelf", "-d", herald_bin], capture_output=True, text=True, check=True).stdout
        ldd = subprocess.run(["ldd", herald_bin], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return [("binary libraries", f"cannot inspect \"{herald_bin}\": {e}")]
    paths = {}
    for line in ldd.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            paths[m.group(1)] = m.group(2)
    for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn):
        if re.match(r"lib(asan|ubsan|tsan|lsan)\.", soname):
            continue  # a sanitizer build; release images are built without them
        path = paths.get(soname)
        if not path:
            results.append((f"library {soname}", f"\"{soname}\" does not resolve on this machine"))
            continue
        real = os.path.realpath(path)
        pkg = None
        for candidate in (path, real, "/usr" + path if not path.startswith("/usr") else path):
            r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0].strip()
                break
        if pkg is None:
            results.append((f"library {soname}", f"no Debian package owns \"{path}\""))
            continue
        results.append((f"library {soname} ({pkg})",
                        None if pkg in final_pkgs or pkg in BASE_PACKAGES else
                        f"\"{soname}\" comes from {pkg}, which the final stage does not install"))
    return results


# Mutations of a good Dockerfile that the checker must catch.
MUTATIONS = [
    ("root user", lambda t: re.sub(r"^USER .*$", "USER root", t, flags=re.M), "numeric non-root USER"),
    ("uid 0", lambda t: re.sub(r"^USER .*$", "USER 0:0", t, flags=re.M), "numeric non-root USER"),
    ("no USER", lambda t: re.sub(r"^USER .*$", "", t, flags=re.M), "numeric non-root USER"),
    ("single stage", lambda t: t.replace("FROM debian:12-slim AS runtime", "").replace(
        "COPY --from=build /src/build/herald", "COPY build/herald"), "multi-stage"),
    ("other base image", lambda t: t.replace("debian:12-slim", "ubuntu:24.04"), "base image"),
    ("gcc in the final stage", lambda t: re.sub(r"(FROM debian:12-slim[\s\S]*?install -y --no-install-recommends)",
                                               r"\1 gcc libssl-dev", t), "no build tools"),
    ("shell-form entrypoint", lambda t: re.sub(r"^ENTRYPOINT .*$", "ENTRYPOINT herald run", t, flags=re.M),
     "ENTRYPOINT herald run"),
    ("wrong CMD", lambda t: re.sub(r"^CMD .*$", 'CMD ["--config", "/herald.conf"]', t, flags=re.M),
     "CMD --config"),
    ("tests built", lambda t: t.replace("-DHERALD_TESTS=OFF", ""), "build stage configures without tests"),
    ("missing runtime lib", lambda t: t.replace(" libhiredis0.14", ""), "runtime libraries"),
    ("sources in the final stage", lambda t: re.sub(r"^(ENTRYPOINT .*)$", r"COPY . /src\n\1", t, flags=re.M),
     "copies nothing else"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dockerfile", default=str(ROOT / "Dockerfile"))
    ap.add_argument("--dockerignore", default=str(ROOT / ".dockerignore"))
    args = ap.parse_args()

    try:
        text = Path(args.dockerfile).read_text()
    except OSError as e:
        print(f"FAIL: cannot read the Dockerfile: {e}")
        print("0 passed, 1 failed")
        return 1
    ignore = Path(args.dockerignore).read_text() if Path(args.dockerignore).exists() else ""
    herald_bin = os.environ.get("HERALD_BIN") or None
    if herald_bin and not os.access(herald_bin, os.X_OK):
        print(f"note: HERALD_BIN \"{herald_bin}\" is not executable; skipping the library check")
        herald_bin = None

    passed = failed = 0
    for name, err in check(text, ignore, herald_bin):
        if err:
            failed += 1
            print(f"FAIL: {name}: {err}")
        else:
            passed += 1
            print(f"ok: {name}")

    # The checker must be able to fail: every mutation has to be caught.
    for desc, mutate, expect in MUTATIONS:
        mutated = mutate(text)
        if mutated == text:
            failed += 1
            print(f"FAIL: self-test \"{desc}\": the mutation did not change the Dockerfile")
            continue
        errs = [(n, e) for n, e in check(mutated, ignore) if e]
        if any(expect in n for n, _ in errs):
            passed += 1
            print(f"ok: self-test \"{desc}\" is caught")
        else:
            failed += 1
            print(f"FAIL: self-test \"{desc}\": expected a failure of \"{expect}\", got "
                  f"{[n for n, _ in errs] or 'none'}")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
