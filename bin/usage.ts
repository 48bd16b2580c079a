// The help text of the `zcio` command (`zcio`, `zcio --help`, `zcio help`).

export const USAGE = `zcio: zero-copy I/O for Node.js on Linux; benchmarks of this machine

Usage: zcio bench [options]        read benchmark (1 GiB file by default)
       zcio bench net [options]    loopback TCP benchmark
       zcio --version | --help

Commands:
  bench                  Read benchmark: zcio registered buffers next to
                         fs.read, FileHandle.read, fs.readSync and fio (tuned
                         and with defaults, when installed) on one
                         page-cache-warm file, then the cost of single pool
                         calls, then a pass/miss summary of the library's
                         performance bars
  bench net              Loopback TCP benchmark, sender and receiver in
                         separate processes: a stream in 64 KiB writes (zcio
                         send() and sendZc() of pool buffers into a multishot
                         receive, Node net, iperf3 when installed), 64-byte
                         ping-pong and pipelined 64-byte messages (zcio, Node
                         net); throughput or rate and the CPU of both
                         processes, medians of several runs, ratios and a
                         pass/miss summary of the network bars
  help                   Show this help

Options (bench):
  --size <bytes>         File size: bytes or with a K/M/G/T suffix (1024-based),
                         e.g. 1G, 256M (default 1G, at least 1M)
  --duration <seconds>   Measured seconds per case, after a 0.3 s warm-up
                         (default 3)
  --file <path>          Create the test file at this new path, or in this
                         directory, instead of the OS temp directory; it is
                         deleted at the end
  --json <file>          Also write the results as JSON to <file>
  --quick                Smoke test: --size 64M --duration 1 and a shorter
                         per-call table (explicit --size/--duration still win)
  --calls                Only the per-call table (ns per call of pool and
                         ring methods): no file, no fio

Options (bench net):
  --size <bytes>         Bytes per stream run, with a K/M/G/T suffix as above
                         (default 4G, at least 1M; rounded up to 64 KiB)
  --runs <n>             Runs per case, each in fresh processes after a
                         warm-up connection; medians are reported (default 3)
  --round-trips <n>      Ping-pong round trips per run (default 50000)
  --messages <n>         Pipelined messages per run (default 1000000)
  --only <groups>        Only these groups, comma-separated: stream,
                         ping-pong, pipelined, and the zcio.net ones against
                         node:net: http (wrk, when installed), echo, churn,
                         net-ping-pong (default: all). echo also has a
                         reference row, ferrings' echo server driven by the
                         node:net client, when ZCIO_BENCH_FERRINGS names a
                         built copy (or the current directory resolves the
                         ferrings package; never installed): git clone
                         https://github.com/avifenesh/ferrings, cargo build
                         --release in it, copy target/release/libferrings.so
                         to ferrings.linux-x64-gnu.node there
  --json <file>          Also write every run, the medians and the bars as
                         JSON to <file>
  --quick                Smoke test, well under a minute: --size 256M --runs 1
                         --round-trips 5000 --messages 200000 (explicit
                         options still win)

Options (both):
  --backend <b>          The backend of zcio's rings: auto (default),
                         io_uring or epoll; as ZCIO_BACKEND, which it sets
                         for the bench and its peer processes
  --check                Exit with 1 when a bar of the summary (or, with
                         --calls, a per-call target) misses, naming it; bars
                         this machine cannot measure (n/a) do not count, but
                         a run that measures none fails. Without --check the
                         exit code does not depend on the bars
  --bar-scale <factor>   Hold every bar <factor> times as strict (default 1):
                         targets to reach are multiplied by it, limits not to
                         exceed divided by it; 1.2 asks for 20% headroom.
                         The summary shows the scaled targets

  -h, --help             Show this help
  -v, --version          Print the version of zcio

Examples:
  zcio bench --quick                   a smoke run of the read benchmark
  zcio bench --size 4G --json r.json   a longer run, results also as JSON
  zcio bench --calls                   only the cost of single calls
  zcio bench net --only ping-pong      one network group
  zcio bench --quick --check           fail (exit 1) when a bar misses

Progress goes to stderr, the result tables to stdout, fitted to the terminal
(at most 100 columns; COLUMNS when not a terminal). Exit codes: 0 done, 1 the
run failed (or --check: a bar missed), 2 usage error.
`
