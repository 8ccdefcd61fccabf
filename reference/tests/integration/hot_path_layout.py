#!/usr/bin/env python3
"""The request path's functions lie together in the linked program (SQUALL_HOT,
include/squall/detail/hot_path.h).

Reads the program's symbols with `nm` and checks that a sample of the functions every
request runs, from each layer (loop, stream, HTTP/1 connection, parser, headers, request,
router, handler), spans a small share of the program's code. Without the attribute they
lie where their source files put them, spread over about half of it.

    hot_path_layout.py PROGRAM   (the program, or libsquall.so in a shared build)
"""
import subprocess
import sys

# One or two functions per layer, as `nm -C` prints the start of their names.
REQUEST_PATH = [
    "squall::IOLoop::poll(",
    "squall::IOStream::handle_events(",
    "squall::HTTP1Connection::read_request(",
    "squall::HTTP1Connection::on_request_head(",
    "squall::HTTP1Connection::write_headers(squall::ResponseStartLine",
    "squall::parse_request_head(std::basic_string_view<char, std::char_traits<char> >, std::vector",
    "squall::HTTPHeaders::set(",
    "squall::HTTPServerRequest::HTTPServerRequest(squall::RequestStartLine const&, squall::HTTPHeaders&&",
    "squall::RuleRouter::find_rule(",
    "squall::RequestHandler::finish(",
]
# Of the program's code, the share the sample may span: about 10 % with the attribute,
# over 40 % without (squall-contract-app, GCC 12, Release).
MAX_SHARE = 0.2


def text_size(program: str) -> int:
    # `size` in Berkeley format: text data bss dec hex filename
    out = subprocess.run(["size", program], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[1].split()[0])


def addresses(program: str) -> dict[str, int]:
    out = subprocess.run(["nm", "-C", program], capture_output=True, text=True, check=True).stdout
    found: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)  # address, type, name; an undefined symbol has no address
        if len(parts) != 3 or parts[1] not in ("T", "t") or parts[2].endswith(".cold"):
            continue
        for prefix in REQUEST_PATH:
            if parts[2].startswith(prefix):
                found.setdefault(prefix, int(parts[0], 16))
    return found


def main() -> int:
    program = sys.argv[1]
    found = addresses(program)
    missing = [name for name in REQUEST_PATH if name not in found]
    if missing:
        print("not found in the program's symbols:", *missing, sep="\n  ")
        return 1
    span = max(found.values()) - min(found.values())
    text = text_size(program)
    print(f"the request path's sample spans {span / 1024:.0f} KiB of {text / 1024:.0f} KiB of code "
          f"({span / text:.0%}; at most {MAX_SHARE:.0%})")
    if span > MAX_SHARE * text:
        for name, address in sorted(found.items(), key=lambda item: item[1]):
            print(f"  {address:#010x}  {name}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
