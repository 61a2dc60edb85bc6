"""The languages the sandbox runs and how.

Python runs in the warm interpreter itself. The others are a `Language`: an optional compile step
(run inside the sandbox, once per request, its one output file cached) and a run command. Only
languages whose tools are installed are offered; the rest answer 422.

Memory: for Python, C and C++ the address-space rlimit is the memory limit. Runtimes that reserve
far more address space than they use (the JVM, V8) get no address-space limit; their heap flag
and the data-segment rlimit (`memory_mb` + `overhead_mb`, private writable memory, thread stacks
included) bound them. The stack rlimit is also glibc's default thread stack size, so runtimes
that start many threads get a smaller one (`stack_mb`): with 256 MiB, Node could not start its
worker threads under its data limit and waited for them forever.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from rewardstack.sandbox.settings import SandboxSettings

UNLIMITED_ADDRESS_SPACE_MB = 1 << 30  # i.e. no limit worth the name; data-segment rlimit applies


@dataclass(frozen=True)
class Language:
    source_name: str
    run_argv: tuple[str, ...]  # `{memory_mb}` is replaced by the run's limit
    compile_argv: tuple[str, ...] | None = None
    artifact_name: str | None = None  # what the compile step leaves in the scratch
    native: bool = False  # the artifact is the executable itself (run through a memfd)
    overhead_mb: int = 0  # the runtime's own memory beyond the program's limit
    unlimited_address_space: bool = False
    stack_mb: int | None = None  # None: the service's stack_mb
    ro_paths: tuple[str, ...] = ()  # host paths the runtime needs beyond /usr

    @property
    def compiled(self) -> bool:
        return self.compile_argv is not None

    @property
    def cache_key(self) -> str:
        """Part of the compiled-artifact cache key: another compiler or flags is another artifact."""
        return "\0".join(self.compile_argv or ())

    def argv(self, memory_mb: int) -> list[str]:
        return [arg.replace("{memory_mb}", str(memory_mb)) for arg in self.run_argv]

    def address_space_mb(self, memory_mb: int) -> int:
        return UNLIMITED_ADDRESS_SPACE_MB if self.unlimited_address_space else memory_mb


def _tool(program: str) -> str | None:
    path = shutil.which(program)
    return os.path.realpath(path) if path else None


def _java(settings: SandboxSettings) -> Language | None:
    javac = _tool(settings.javac)
    if javac is None:
        return None
    home = os.path.dirname(os.path.dirname(javac))
    java, jar = os.path.join(home, "bin", "java"), os.path.join(home, "bin", "jar")
    if not (os.path.exists(java) and os.path.exists(jar)):
        return None
    # Debian keeps the JDK's configuration in /etc/java-N-openjdk, linked from $JAVA_HOME/conf.
    conf = os.path.join(home, "conf", "net.properties")
    ro_paths = (os.path.dirname(os.path.realpath(conf)),) if os.path.islink(conf) else ()
    flags = "-J-Xmx512m -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -encoding UTF-8"
    return Language(
        source_name="Main.java",
        compile_argv=("/bin/sh", "-c", f"{javac} {flags} Main.java && {jar} cf main.jar *.class"),
        artifact_name="main.jar",
        run_argv=(java, "-Xmx{memory_mb}m", "-Xss32m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                  "-XX:-UsePerfData", "-cp", "main.jar", "Main"),
        overhead_mb=1024,
        unlimited_address_space=True,
        stack_mb=8,
        ro_paths=ro_paths,
    )


def available_languages(settings: SandboxSettings) -> dict[str, Language]:
    """Every installed language but Python: cpp (C++17), c (C11), java (17+, class Main), javascript (Node)."""
    languages: dict[str, Language] = {}
    gxx, gcc, node = _tool(settings.gxx), _tool(settings.gcc), _tool(settings.node)
    if gxx:
        languages["cpp"] = Language("main.cpp", ("./main",), (gxx, "-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp", "-lm"),
                                    "main", native=True)
    if gcc:
        languages["c"] = Language("main.c", ("./main",), (gcc, "-std=c11", "-O2", "-pipe", "-o", "main", "main.c", "-lm"),
                                  "main", native=True)
    java = _java(settings)
    if java:
        languages["java"] = java
    if node:
        languages["javascript"] = Language("main.js", (node, "--max-old-space-size={memory_mb}", "--stack-size=65500", "main.js"),
                                           overhead_mb=1024, unlimited_address_space=True, stack_mb=80)
    return languages
