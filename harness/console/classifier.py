"""Streaming classifier over kernel console text.

Design (why it looks the way it does):

* Console text arrives in arbitrary chunks from a live VM.  Only complete
  lines are classified; the partial last line is buffered until its newline
  arrives, so a line split across two reads still matches.
* Almost all console text is harmless.  Instead of running every regex on
  every line, one prefilter regex over the whole chunk finds the few lines
  containing a trigger word (``PREFILTER_WORDS``); only those are stripped of
  their console prefixes and matched against the pattern table.  Inside an
  open report the end marker is found the same way, by literal search.  Line
  numbers come from ``str.count("\\n")`` over the skipped spans.  About
  110 MB/s per CPU second on the corpus (bench/console_throughput.py).
* Once the stream has shown kernel timestamps (``[   1.234567]``), a report
  may only start on a line carrying one: user space writing "BUG: ..." to
  the same console then cannot fake a report.  A kernel line glued to the end
  of a user-space line without a newline is still found by looking for an
  embedded timestamp.
* A panic is published on its first line: the rest may never come.  Other
  reports are published when their block ends, which is as soon as the end
  marker's line is fed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.console.patterns import END_TRACE, PATTERNS, PREFILTER_WORDS, End, Pattern
from harness.console.types import Finding

__all__ = ["MAX_BLOCK_LINES", "ConsoleClassifier", "classify_text"]

#: A report longer than this is cut (a runaway block would otherwise swallow
#: every later report).  OOM reports with a long task list are the longest.
MAX_BLOCK_LINES = 2000
#: How many lines a ``cut here`` line waits for its WARNING/BUG line (a
#: WARN() message is printed between the two).
_CUT_HERE_WINDOW = 10
#: A line without a newline longer than this is classified anyway, so that
#: binary garbage on the console cannot grow the buffer without bound.
_MAX_PARTIAL = 1 << 20

# <level> then [seconds.micros] and/or [caller id]; one space after them.
_PREFIX = re.compile(r"(?:<\d{1,3}>)?((?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])?)")
_TIMESTAMP_LINE = re.compile(r"^(?:<\d{1,3}>)?\[\s*\d+\.\d+\]", re.M)
_EMBEDDED = re.compile(r"\[\s*\d+\.\d{6}\](?:\[\s*[TC]\d+\])? ?")
_CUT_HERE = re.compile(r"-+\[ cut here \]-+\s*$")

# Matched (re.match) against single prefix-stripped lines of a finished block.
_RIP = re.compile(r"RIP: [0-9a-f]{4}:(?P<fn>[A-Za-z_][\w.]*)\+0x")
_TRACE_START = re.compile(r"(?:Call Trace:|stack backtrace:|(?:kmemleak:)?\s*backtrace)")
_FRAME = re.compile(
    r"\s*(?:kmemleak:\s+)?(?:\[<[0-9a-f]+>\] )?(?P<fn>[A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+"
)
_AT_FN = re.compile(r" at: (?P<fn>[A-Za-z_][\w.]*)\+0x")
_ACCESS = re.compile(r"(?P<access>Read|Write) of size")
# Frames that are the reporting machinery, not the code at fault.
_SKIP_FRAME = re.compile(
    r"(?:dump_stack|show_stack|__dump_stack|__warn|warn_slowpath|report_bug|handle_bug"
    r"|exc_|asm_|sysvec_|__sysvec_|irq_exit|__irq_exit|panic|__might_|might_|___might_"
    r"|__cond_resched|__schedule|schedule|preempt_schedule|io_schedule|__schedule_bug"
    r"|ubsan_|__ubsan_|kasan_|__kasan_|kfence_|__kfence_|print_|lockdep_|__lock_acquire"
    r"|lock_acquire|lock_release|check_|validate_chain|mark_lock|_raw_|do_raw_|__raw_"
    r"|rt_mutex|mutex_lock|__mutex_lock|down_|up_|warn_alloc|__alloc_|alloc_pages"
    r"|__get_free_pages|folio_alloc|__folio_alloc|kmalloc|__kmalloc|kmem_cache_alloc"
    r"|slab_|__slab_|___slab_|new_slab|allocate_slab|vmalloc|__vmalloc|bad_page"
    r"|free_page|__free_page|free_unref|kmemleak_|create_object|__create_object"
    r"|ret_from_fork|entry_SYSCALL|do_syscall|x64_sys_call|watchdog|hrtimer|__hrtimer"
    r"|tick_|update_process_times|rcu_|nmi_|dump_cpu_task|sched_show_task|debug_show"
    r"|hung_task|check_hung|kthread)"
)
_SPACES = re.compile(r"\s+")


_Finder = Callable[[str, int], int]


def _finder(word: str) -> _Finder:
    """The fastest way to find ``word`` in console text.

    Python's regex engine scans for a literal's first character in a tight
    loop, which is several times faster than ``str.find`` when that
    character is rare in console text (upper case, ``<``, ``-``, ``=``);
    ``str.find`` wins for lower-case words.  Measured on the corpus.
    """
    if word[0].isupper() or word[0] in "<-=":
        search = re.compile(re.escape(word)).search

        def find(text: str, pos: int) -> int:
            m = search(text, pos)
            return m.start() if m else -1

        return find
    return lambda text, pos: text.find(word, pos)


_WORD_FINDERS: tuple[_Finder, ...] = tuple(_finder(w) for w in PREFILTER_WORDS)


_MARKER_FINDERS: dict[str, _Finder] = {}


def _marker_finder(marker: str) -> _Finder:
    finder = _MARKER_FINDERS.get(marker)
    if finder is None:
        finder = _MARKER_FINDERS[marker] = _finder(marker)
    return finder


class _Prefilter:
    """Finds the next trigger word in a text with one ``str.find`` per word.

    ``str.find`` scans at memory speed while an alternation regex tries every
    position in Python's regex engine (about 5x slower here); the positions
    found are remembered per word, so each word's occurrences are scanned for
    once per chunk however often the classifier asks.
    """

    __slots__ = ("_next", "_text")

    def __init__(self) -> None:
        self._text = ""
        self._next = [-1] * len(PREFILTER_WORDS)

    def reset(self, text: str) -> None:
        """Start on a new text (positions are only valid within one)."""
        self._text = text
        self._next = [-2] * len(PREFILTER_WORDS)

    def search(self, text: str, pos: int) -> int:
        """Position of the first trigger word at or after ``pos``, or -1.

        ``pos`` must not decrease between calls on the same text.
        """
        assert text is self._text
        nxt = self._next
        best = -1
        for i, find in enumerate(_WORD_FINDERS):
            at = nxt[i]
            if at != -1 and at < pos:
                at = nxt[i] = find(text, pos)
            if at >= 0 and (best < 0 or at < best):
                best = at
        return best


def _strip(line: str) -> tuple[str, bool]:
    """Drop the console prefixes; tell whether the line had a kernel prefix."""
    m = _PREFIX.match(line)
    assert m is not None  # every part of _PREFIX is optional
    end = m.end()
    if not m.group(1):
        return line[end:], end > 0
    if end < len(line) and line[end] == " ":
        end += 1
    return line[end:], True


def _blamed_function(groups: dict[str, str], lines: list[str]) -> str | None:
    """The function a report blames, from its raw console lines.

    The function named on the report's first line if any (WARNING, KASAN),
    else the kernel ``RIP:`` line, else the first call-trace frame that is
    not reporting machinery (dump_stack, __might_sleep, lock_acquire...),
    else the function that took a listed lock (lockdep's "at: fn+0x").
    Lines are only stripped of their prefixes when a cheap substring test
    says they may matter: this runs for every finding.
    """
    fn = groups.get("fn")
    if fn:
        return fn.split(".", 1)[0]
    for raw in lines:
        if "RIP: " in raw:
            rip = _RIP.match(_strip(raw)[0])
            if rip:
                return rip.group("fn").split(".", 1)[0]
    in_trace = False
    for raw in lines:
        if not in_trace:
            if "Call Trace:" in raw or "backtrace" in raw:
                in_trace = _TRACE_START.match(_strip(raw)[0]) is not None
            continue
        if "+0x" in raw:
            frame = _FRAME.match(_strip(raw)[0])
            if frame and not _SKIP_FRAME.match(frame.group("fn")):
                return frame.group("fn").split(".", 1)[0]
    for raw in lines:
        if " at: " in raw:
            at = _AT_FN.search(raw)
            if at:
                return at.group("fn").split(".", 1)[0]
    return None


def _format_title(templates: tuple[str, ...], fields: dict[str, str]) -> str:
    for template in templates:
        try:
            title = template.format_map(fields)
        except KeyError:
            continue
        return _SPACES.sub(" ", title).strip()
    return templates[-1]


@dataclass(slots=True)
class _Open:
    """A report whose end has not been seen yet."""

    pattern: Pattern
    line: int
    groups: dict[str, str]
    parts: list[str]
    nlines: int
    marker: str
    die_seen: bool = False
    finding: Finding | None = None
    end_groups: dict[str, str] = field(default_factory=dict)


class ConsoleClassifier:
    """Feed console text in chunks of any size; get :class:`Finding` objects.

    ``feed()`` returns the findings completed by that chunk (a panic as soon
    as its first line arrives), ``close()`` flushes a report still open at the
    end of input, ``findings`` lists every finding so far in stream order of
    completion.  Not thread-safe: one classifier per console stream.
    """

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self._partial = ""
        self._lineno = 0  # complete lines consumed so far
        self._timestamps = False  # the stream has shown kernel timestamps
        self._open: _Open | None = None
        # (line number, raw lines) of a "cut here" waiting for its report.
        self._cut: tuple[int, list[str]] | None = None
        self._new: list[Finding] = []
        self._closed = False
        self._prefilter = _Prefilter()

    # -- public API ---------------------------------------------------------

    def feed(self, chunk: str) -> list[Finding]:
        """Classify ``chunk``; return the findings it completed."""
        if self._closed:
            raise ValueError("feed() after close()")
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind("\n") + 1
        if cut == 0 and len(data) > _MAX_PARTIAL:
            data += "\n"
            cut = len(data)
        self._partial = data[cut:]
        if cut:
            self._process(data[:cut])
        return self._take_new()

    def close(self) -> list[Finding]:
        """End of input: classify the unterminated last line, flush open reports."""
        if not self._closed:
            if self._partial:
                tail, self._partial = self._partial + "\n", ""
                self._process(tail)
            if self._open is not None:
                self._finish(self._open)
                self._open = None
            self._cut = None
            self._closed = True
        return self._take_new()

    # -- internals ----------------------------------------------------------

    def _take_new(self) -> list[Finding]:
        new, self._new = self._new, []
        return new

    def _process(self, text: str) -> None:
        """Classify ``text``, which ends with a newline."""
        if not self._timestamps and _TIMESTAMP_LINE.search(text):
            self._timestamps = True
        self._prefilter.reset(text)
        pos, n = 0, len(text)
        while pos < n:
            if self._open is not None:
                pos = self._advance_open(text, pos)
                continue
            hit = self._prefilter.search(text, pos)
            if hit < 0:
                self._skip(text, pos, n)
                return
            ls = text.rfind("\n", pos, hit) + 1 or pos
            self._skip(text, pos, ls)
            le = text.index("\n", hit) + 1
            self._lineno += 1
            self._candidate(text[ls:le], self._lineno)
            pos = le

    def _skip(self, text: str, start: int, end: int) -> None:
        """Lines [start, end) hold no trigger word and no report is open."""
        if start >= end:
            return
        count = text.count("\n", start, end)
        self._lineno += count
        if self._cut is not None:
            cut_line, lines = self._cut
            if self._lineno - cut_line >= _CUT_HERE_WINDOW:
                self._cut = None
            else:
                lines.append(text[start:end])

    def _match_start(self, raw: str) -> tuple[Pattern, re.Match[str]] | None:
        """The table row whose start regex matches this raw console line."""
        line = raw.rstrip("\r\n")
        stripped, prefixed = _strip(line)
        if prefixed or not self._timestamps:
            hit = self._match_row(stripped)
            if hit is not None:
                return hit
        if "[" in line[1:]:
            # A kernel line glued to user-space text without a newline.
            for emb in _EMBEDDED.finditer(line, 1):
                hit = self._match_row(line[emb.end() :])
                if hit is not None:
                    return hit
        return None

    @staticmethod
    def _match_row(stripped: str) -> tuple[Pattern, re.Match[str]] | None:
        for pattern in PATTERNS:
            m = pattern.start.match(stripped)
            if m is not None:
                return pattern, m
        return None

    def _is_cut_here(self, raw: str) -> bool:
        stripped, prefixed = _strip(raw.rstrip("\r\n"))
        return (prefixed or not self._timestamps) and bool(_CUT_HERE.match(stripped))

    def _candidate(self, raw: str, lineno: int) -> None:
        """A line with a trigger word while no report is open."""
        if "cut here" in raw and self._is_cut_here(raw):
            self._cut = (lineno, [raw])
            return
        hit = self._match_start(raw)
        if hit is None:
            if self._cut is not None:
                if lineno - self._cut[0] >= _CUT_HERE_WINDOW:
                    self._cut = None
                else:
                    self._cut[1].append(raw)
            return
        pattern, m = hit
        if self._cut is not None and pattern.after_cut_here:
            start, parts = self._cut[0], [*self._cut[1], raw]
            self._cut = None
        else:
            start, parts = lineno, [raw]
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        block = _Open(
            pattern=pattern,
            line=start,
            groups=groups,
            parts=parts,
            nlines=len(parts),
            marker=pattern.marker,
            die_seen=pattern.die_header,
        )
        if pattern.emit_on_start:
            block.finding = self._make_finding(block)
            self._publish(block.finding)
        if pattern.end_rule is End.LINE:
            self._finish(block)
        else:
            self._open = block

    def _advance_open(self, text: str, pos: int) -> int:
        """Extend the open report from ``pos``; return where to go on."""
        block = self._open
        assert block is not None
        if block.pattern.end_rule is End.CONTINUATION:
            return self._advance_continuation(block, text, pos)
        n = len(text)
        end_at = -2
        while pos < n:
            # The end marker's position is remembered while still ahead of
            # ``pos``: a long report must not rescan its tail for it.
            if end_at != -1 and end_at < pos:
                end_at = _marker_finder(block.marker)(text, pos) if block.marker else -1
            cand = self._prefilter.search(text, pos)
            if end_at < 0 and cand < 0:
                self._extend(block, text, pos, n)
                return n
            first = cand if end_at < 0 else end_at if cand < 0 else min(cand, end_at)
            ls = text.rfind("\n", pos, first) + 1 or pos
            le = text.index("\n", first) + 1
            self._extend(block, text, pos, ls)
            if self._open is None:  # cut by MAX_BLOCK_LINES
                return ls
            raw = text[ls:le]
            if block.marker and block.marker in raw and self._is_end(block, raw):
                self._append(block, raw)
                self._finish(block)
                self._open = None
                return le
            if 0 <= cand < le and self._starts_report(raw):
                hit = self._match_start(raw)
                if (
                    hit is not None
                    and hit[0].die_header
                    and block.pattern.expects_die
                    and not block.die_seen
                ):
                    # "Oops: ... [#1]" after "BUG: kernel NULL pointer ...":
                    # one report, which now ends where oops_exit() ends it.
                    block.die_seen = True
                    block.marker = END_TRACE
                    end_at = -2
                    self._append(block, raw)
                    pos = le
                    continue
                self._finish(block)
                self._open = None
                return ls  # the new report's line is classified afresh
            self._append(block, raw)
            pos = le
            if self._open is None:
                return pos
        return pos

    def _advance_continuation(self, block: _Open, text: str, pos: int) -> int:
        cont = block.pattern.end
        assert cont is not None
        n = len(text)
        while pos < n:
            le = text.index("\n", pos) + 1
            raw = text[pos:le]
            stripped, _ = _strip(raw.rstrip("\r\n"))
            if not cont.match(stripped) or self._match_start(raw) is not None:
                self._finish(block)
                self._open = None
                return pos
            self._append(block, raw)
            if self._open is None:
                return le
            pos = le
        return pos

    def _starts_report(self, raw: str) -> bool:
        """Whether a trigger-word line inside an open report starts another."""
        if "cut here" in raw and self._is_cut_here(raw):
            return True
        return self._match_start(raw) is not None

    def _is_end(self, block: _Open, raw: str) -> bool:
        end = block.pattern.end
        if end is None or (block.marker == END_TRACE and block.marker != block.pattern.marker):
            # No end regex, or a die() header switched the report to oops_exit()'s marker.
            return True
        stripped, _ = _strip(raw.rstrip("\r\n"))
        m = end.match(stripped)
        if m is None:
            return False
        block.end_groups = {k: v for k, v in m.groupdict().items() if v is not None}
        return True

    def _extend(self, block: _Open, text: str, start: int, end: int) -> None:
        """Append the trigger-free lines [start, end) to the open report."""
        if start >= end:
            return
        count = text.count("\n", start, end)
        self._lineno += count
        if block.nlines + count >= MAX_BLOCK_LINES:
            keep = MAX_BLOCK_LINES - block.nlines
            cut = start
            for _ in range(max(keep, 0)):
                cut = text.index("\n", cut) + 1
            block.parts.append(text[start:cut])
            block.nlines = MAX_BLOCK_LINES
            self._finish(block)
            self._open = None
            return
        block.parts.append(text[start:end])
        block.nlines += count

    def _append(self, block: _Open, raw: str) -> None:
        self._lineno += 1
        block.parts.append(raw)
        block.nlines += 1
        if block.nlines >= MAX_BLOCK_LINES:
            self._finish(block)
            self._open = None

    def _block_text(self, block: _Open) -> str:
        return "".join(block.parts).replace("\r", "").rstrip("\n")

    def _make_finding(self, block: _Open) -> Finding:
        pattern = block.pattern
        text = self._block_text(block)
        lines = text.split("\n")
        fields = dict(block.groups)
        fields.update(block.end_groups)
        fn = _blamed_function(fields, lines)
        if fn:
            fields["fn"] = fn
        if pattern.kind == "kasan":
            for line in lines:
                access = _ACCESS.match(_strip(line)[0]) if " of size" in line else None
                if access:
                    fields["access"] = access.group("access")
                    break
        kind, severity, titles = pattern.kind, pattern.severity, pattern.titles
        if pattern.alt_kind and "alt" in block.end_groups:
            kind, severity, titles = pattern.alt_kind, pattern.alt_severity, pattern.alt_titles
        return Finding(
            kind=kind,
            title=_format_title(titles, fields),
            severity=severity,
            line=block.line,
            block=text,
        )

    def _finish(self, block: _Open) -> None:
        if block.finding is not None:
            # Published on its first line; complete its block in place.
            block.finding.block = self._block_text(block)
            return
        block.finding = self._make_finding(block)
        self._publish(block.finding)

    def _publish(self, finding: Finding) -> None:
        self.findings.append(finding)
        self._new.append(finding)


def classify_text(text: str) -> list[Finding]:
    """Classify a whole console log or dmesg at once."""
    classifier = ConsoleClassifier()
    classifier.feed(text)
    classifier.close()
    return classifier.findings

