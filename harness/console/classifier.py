"""Streaming classifier over kernel console text.

Design (why it looks the way it does):

* Console text arrives in arbitrary chunks from a live VM.  Only complete
  lines are classified; the partial last line is buffered until its newline
  arrives, so a line split across two reads still matches.
* Almost all console text is harmless.  Instead of running every regex on
  every line, one search per trigger word (``PREFILTER_WORDS``, each by
  the fastest C loop for it: :func:`_finder`) over the whole chunk finds the
  few lines containing one; only those are stripped of their console
  prefixes and matched against the pattern table.  Inside an open report
  the end marker is found the same way, by literal search.  Line numbers
  come from ``str.count("\\n")`` over the skipped spans.  A candidate line
  is matched against every row at once (one alternation).  Measured with
  bench/console_throughput.py on a 2-core machine under load (CI builds),
  medians of 11 paired runs per CPU second: the corpus, one report per
  ~10 KB, 157 MB/s (1.16x revision 90c6f0e, before the field's titles,
  which made it 0.95x); clean consoles 300 MB/s (1.22x).
* Once the stream has shown kernel timestamps (``[   1.234567]``), a report
  may only start on a line carrying one: user space writing "BUG: ..." to
  the same console then cannot fake a report.  A kernel line glued to the end
  of a user-space line without a newline is still found by looking for an
  embedded timestamp.
* A panic is published on its first line: the rest may never come.  Other
  reports are published when their block ends, which is as soon as the end
  marker's line is fed.
* The title blames the guilty frame (patterns.SKIP_RULES), computed once per
  finding from its block, never per line.  Lines of another printk caller id
  (CONFIG_PRINTK_CALLER: another task logging meanwhile) are left out of the
  stack walk.  A report is ``corrupted`` only when it really is cut off: it
  lost its end marker (another report started, the input ended,
  MAX_BLOCK_LINES) before its first call trace ended, or another report's
  context header ("CPU: N PID: M" of another task) is inside it.  Its frames
  may then not be its own, so its title names at most the function on its
  own first line (unless that is a helper), never one taken from its body.
  A panic cutting a report short is its consequence, not corruption.
"""

from __future__ import annotations

import heapq
import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from harness.console.patterns import (
    END_TASK,
    END_TRACE,
    PATTERNS,
    PREFILTER_WORDS,
    STALL_ANCHORS,
    STALL_TRIM,
    End,
    Pattern,
    is_skipped,
)
from harness.console.titles import CORRUPTED_PREFIX, normalise_title
from harness.console.types import Finding

__all__ = ["MAX_BLOCK_LINES", "ConsoleClassifier", "classify_text", "guilty_frame", "stall_frame"]

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

# One regex, matched against the lines of a finished block that a substring
# test lets through, tells what each line is to the stack (one C call per
# line instead of prefix stripping and several regexes).  After the console
# prefixes (the printk caller id captured: a line of another task is not
# this report's), one of:
# - a stack header: x86/arm64 "Call Trace:"/"Call trace:", lockdep's "stack
#   backtrace:", kmemleak, arm "Backtrace:" (KCSAN's per-access "... on cpu
#   N:" is _ON_CPU_LINE, tried only on lines holding " on cpu ");
# - a program counter: x86 "RIP: 0010:fn+0x" (older: "RIP: 0010:[<a>]  [<a>]
#   fn+0x"), i386 "EIP:", arm64 "pc : fn+0x", arm "PC is at fn+0x", powerpc "NIP [a] fn+0x";
# - an arm frame "[<c05d5e14>] (lkdtm_BUG) from [<c05d5b44>] (caller+0x1c/0x24)"
#   (each line names the callee, the next line its caller);
# - a frame " fn+0x1/0x2" (optionally after "[<address>] " or "kmemleak:").
# "? fn+0x" frames are unreliable guesses and match none of these.  Function
# groups stop at the first "." (".constprop.0", ".isra.0" are not the name).
# The prefixes are an atomic group and the names possessive: a line that is
# none of these fails after one try of each alternative instead of retrying
# them all with fewer prefixes or a shorter name (3x faster on such lines:
# the "hardirqs last enabled at ... fn+0x" lines of every lockup report).
_STACK_PREFIX = r"(?>(?:<\d{1,3}>)?(?:\[[ \t]*\d+\.\d+\])?(?:\[[ \t]*(?P<caller>[TC]\d+)\])? ?)"
_STACK_LINE = re.compile(
    _STACK_PREFIX + r"(?:"
    # most lines tried are frames: that alternative first
    r"[ \t]*(?:kmemleak:[ \t]+)?(?:\[<[0-9a-f]+>\] )?(?P<frame>[A-Za-z_]\w*+)[\w.]*+"
    r"\+0x[0-9a-f]+/0x[0-9a-f]+"
    r"|(?:RIP: (?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\][ \t]+\[<[0-9a-f]+>\] )?"
    r"|EIP: (?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\] )?|pc : |PC is at |NIP \[[0-9a-f]+\] )"
    r"(?P<pc>[A-Za-z_]\w*+)[\w.]*+\+0x"
    r"|[ \t]*\[<[0-9a-f]+>\] \((?P<arm>[A-Za-z_]\w*+)[\w.]*+(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?\)"
    r" from \[<"
    r"|(?P<start>Call [Tt]race:|stack backtrace:|(?:kmemleak:)?[ \t]*backtrace|Backtrace:)"
    r")"
)
_ON_CPU_LINE = re.compile(_STACK_PREFIX + r"(?P<start>[^\n]* on cpu \d+:[ \t]*$)")
_AT_FN = re.compile(r" at: (?P<fn>[A-Za-z_]\w*+)[\w.]*+\+0x")
# Searched in a whole block: printk caller ids ("[    T49]", "[     C0]") after
# the optional level and time, and dump_stack()'s and __warn()'s context header.
_CALLER = re.compile(r"(?:<\d{1,3}>)?(?:\[\s*\d+\.\d+\])?\[\s*([TC]\d+)\]")
_CONTEXT = re.compile(r"CPU: (\d+) (?:UID: \d+ )?PID: (\d+)(?: Comm:| at )")


#: Every row's start regex as one alternation, row i as capturing group i+1
#: (the rows' own groups made non-capturing): one C-level match tells which
#: row, if any, a line starts -- the first in table order, as a loop over the
#: rows would.  Most candidate lines match no row; they cost one call.
_ANY_ROW = re.compile(
    "|".join("(" + re.sub(r"\(\?P<\w+>", "(?:", p.start.pattern) + ")" for p in PATTERNS)
)
assert _ANY_ROW.groups == len(PATTERNS), "a start regex has an unnamed capturing group"

_Finder = Callable[[str, int], int]


#: Characters rare in console text, rarest first (per mille of the corpus,
#: clean boots alike: ``#`` 0.4, ``W`` 0.4, ``<`` 0.8, ``G`` 1.1, ``F`` 1.2;
#: lower case letters 4-80, ``[`` 26).
_RARE_CHARS = "#W<GF"
#: Consecutive false hits of a rare character after which a finder falls
#: back to the regex engine for the rest of the text (a console full of
#: them must not make the memchr loop run at Python speed per character).
_MAX_FALSE_HITS = 64


def _finder(word: str) -> _Finder:
    """The fastest way to find ``word`` in console text (measured on the corpus).

    * 14 characters or more: ``str.find``, which skips ahead by the needle's
      length ("Kernel panic - not syncing" is found ~1.6x faster than
      "Kernel panic").
    * A word holding a character of ``_RARE_CHARS``: ``str.find`` of that one
      character is memchr, several times faster than any search for the
      word; each hit is checked with ``str.startswith`` ("WARNING: " by its
      "W": 3x faster than the regex engine, "BUG" by its "G" 1.6x, the end
      marker "</TASK>" by its "<" 1.9x, "[#" by its "#": the timestamp's
      "[" is on every line).
    * Otherwise Python's regex engine, which scans for a literal's first
      character in a tight C loop, when that character is upper case or
      ``-``/``=`` (rarer than lower case); ``str.find`` for the rest.
    """
    if len(word) >= 14:
        return lambda text, pos: text.find(word, pos)
    search = re.compile(re.escape(word)).search

    def regex_find(text: str, pos: int) -> int:
        m = search(text, pos)
        return m.start() if m else -1

    rare = next((c for c in _RARE_CHARS if c in word), "")
    if rare:
        off = word.index(rare)

        def rare_find(text: str, pos: int) -> int:
            at = text.find(rare, pos + off)
            misses = 0
            while at >= 0:
                if text.startswith(word, at - off):
                    return at - off
                misses += 1
                if misses > _MAX_FALSE_HITS:
                    return regex_find(text, at - off + 1)
                at = text.find(rare, at + 1)
            return -1

        return rare_find
    if word[0].isupper() or word[0] in "<-=":
        return regex_find
    return lambda text, pos: text.find(word, pos)


_WORD_FINDERS: tuple[_Finder, ...] = tuple(_finder(w) for w in PREFILTER_WORDS)


_MARKER_FINDERS: dict[str, _Finder] = {}


def _marker_finder(marker: str) -> _Finder:
    finder = _MARKER_FINDERS.get(marker)
    if finder is None:
        finder = _MARKER_FINDERS[marker] = _finder(marker)
    return finder


class _Prefilter:
    """Finds the next trigger word in a text with one search per word hit.

    A search per word (``_finder``: memchr, ``str.find`` or a literal regex
    scan, all C loops) beats one alternation regex, which tries every
    position in Python's regex engine (about 5x slower here).  Each word's
    next hit is remembered in a heap of (position, word), so a word is
    searched for again only once the classifier has passed its last hit: its
    occurrences are scanned for once per chunk however often the classifier
    asks, and a question costs a heap operation, not a loop over the words.
    """

    __slots__ = ("_best", "_heap", "_text")

    def __init__(self) -> None:
        self._text = ""
        self._heap: list[tuple[int, int]] = []
        self._best = -1

    def reset(self, text: str) -> None:
        """Start on a new text (positions are only valid within one)."""
        self._text = text
        # Every word "hit" at -1: the first search looks for each of them.
        self._heap = [(-1, i) for i in range(len(_WORD_FINDERS))]
        self._best = -2

    def search(self, text: str, pos: int) -> int:
        """Position of the first trigger word at or after ``pos``, or -1.

        ``pos`` must not decrease between calls on the same text.  While
        ``pos`` has not passed the last answer, that answer stands: every
        word's next hit is at or after it.
        """
        assert text is self._text
        best = self._best
        if best >= pos or best == -1:
            return best
        heap = self._heap
        while heap and heap[0][0] < pos:
            word = heap[0][1]
            at = _WORD_FINDERS[word](text, pos)
            if at < 0:
                heapq.heappop(heap)  # no more of this word in the text
            else:
                heapq.heapreplace(heap, (at, word))
        best = self._best = heap[0][0] if heap else -1
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


def _stack(top: str | None, text: str, caller: str = "") -> Iterator[str]:
    """The functions of a report's stack, innermost first, from its block.

    ``top``, the function named on the report's first line (WARNING, KASAN),
    then, in block order, program-counter lines (``RIP:``, ``pc :``...) and
    the frames of call traces (frames before the first stack header are
    not a stack: lockdep's "hardirqs last enabled at ... fn+0x"), then the
    functions that took a listed lock (lockdep's "at: fn+0x"; a report of
    held locks has no stack).  Lazy: the caller stops at the guilty frame.
    Names lose their ``.constprop.0``-style suffixes.  With ``caller`` (the
    printk caller id of the report's first line, CONFIG_PRINTK_CALLER), lines
    printed by another task or CPU are not this report's: skipped.
    """
    if top:
        yield top.split(".", 1)[0]
    in_trace = False
    match = _STACK_LINE.match
    for raw in text.split("\n"):
        if "+0x" in raw:
            m = match(raw)
            if m is None and not in_trace and " on cpu " in raw:
                m = _ON_CPU_LINE.match(raw)
        elif not in_trace and ("race" in raw or " on cpu " in raw):
            m = match(raw) or _ON_CPU_LINE.match(raw)
            if m is None:
                continue
        else:
            continue
        if m is None or caller and m.group("caller") not in (None, caller):
            continue
        kind = m.lastgroup
        if kind == "start":
            in_trace = True
        elif in_trace or kind == "pc":
            yield m.group(kind or "frame")
    for at in _AT_FN.finditer(text):
        yield at.group("fn")


def _read_body_fields(pattern: Pattern, text: str, fields: dict[str, str]) -> None:
    """Set ``pattern.body_fields`` from the block's lines (first match per name)."""
    lines = text.split("\n")[1:]
    for bf in pattern.body_fields:
        if bf.name in fields:
            continue
        for raw in lines:
            if bf.needle in raw:
                m = bf.regex.match(_strip(raw)[0])
                if m:
                    fields[bf.name] = bf.value or m.group(bf.name)
                    break


class _Memo(dict[str, bool]):
    """fn -> a whole-name test of it, computed on first use (``memo[fn]``).

    The same few hundred functions recur in every report, and a lookup that
    hits is one C call where the test is a regex over a long alternation.
    Bounded: cleared when full (a console naming endless distinct functions
    must not grow it without limit).
    """

    __slots__ = ("_test",)
    MAX = 8192

    def __init__(self, test: Callable[[str], bool]) -> None:
        super().__init__()
        self._test = test

    def __missing__(self, fn: str) -> bool:
        if len(self) >= self.MAX:
            self.clear()
        value = self[fn] = self._test(fn)
        return value


#: Per set of skip tags: fn -> whether a skip rule that applies matches it.
_SKIPPED: dict[frozenset[str], _Memo] = {}
#: fn -> whether it is a stall anchor (patterns.STALL_ANCHORS).
_IS_ANCHOR = _Memo(lambda fn: STALL_ANCHORS.match(fn) is not None)


def _skip_memo(tags: Iterable[str]) -> _Memo:
    key = frozenset(tags)
    memo = _SKIPPED.get(key)
    if memo is None:
        memo = _SKIPPED[key] = _Memo(lambda fn: is_skipped(fn, key))
    return memo


def guilty_frame(stack: Iterable[str], tags: Iterable[str] = ()) -> str:
    """The first function of ``stack`` that no skip rule matches, or "".

    ``tags``: the report's skip tags (``Pattern.skip_tags``): tagged rules
    apply only to reports carrying one of their tags.
    """
    skipped = _skip_memo(tags)
    for fn in stack:
        if not skipped[fn]:
            return fn
    return ""


def stall_frame(stack: Iterable[str], tags: Iterable[str] = ()) -> str:
    """A stall's representative frame: the last frame no skip rule matches
    before the first anchor (patterns.STALL_ANCHORS; the anchor itself when
    nothing precedes it), syscall wrapper prefixes trimmed; without an
    anchor, the first frame no rule matches."""
    skipped = _skip_memo(tags)
    prev = first = ""
    for fn in stack:
        if _IS_ANCHOR[fn]:
            prev = prev or fn  # nothing before the anchor: the anchor itself
            for prefix, repl in STALL_TRIM:
                if prev.startswith(prefix):
                    return repl + prev[len(prefix) :]
            return prev
        if not skipped[fn]:
            prev = fn
            first = first or fn
    return first


def _anchor_frame(stack: list[str], anchors: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    """The name of the first anchor (in table order) any frame of ``stack`` matches, or ""."""
    for rx, name in anchors:
        for fn in stack:
            if rx.match(fn):
                return name or fn
    return ""


_TEMPLATE_FIELDS: dict[str, frozenset[str]] = {}


def _fields_of(template: str) -> frozenset[str]:
    """The field names a title template needs (parsed once per template)."""
    names = _TEMPLATE_FIELDS.get(template)
    if names is None:
        names = frozenset(f for _, f, _, _ in string.Formatter().parse(template) if f)
        _TEMPLATE_FIELDS[template] = names
    return names


def _format_title(templates: tuple[str, ...], fields: dict[str, str]) -> str:
    """The first template whose fields are all known, filled and normalised."""
    for template in templates:
        if _fields_of(template) <= fields.keys():
            return normalise_title(template.format_map(fields))
    return normalise_title(templates[-1])


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
    #: Why the block ended: "end" (its own end rule), "next" (another report
    #: started), "panic" (a panic started), "close" or "limit".
    ended: str = ""


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
                self._finish(self._open, "close")
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
        which = _ANY_ROW.match(stripped)
        if which is None or which.lastindex is None:
            return None
        pattern = PATTERNS[which.lastindex - 1]
        m = pattern.start.match(stripped)
        assert m is not None  # the same regex, with its group names
        return pattern, m

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
            block.ended = "end"  # its title is its first line's: nothing to corrupt
            block.finding = self._make_finding(block)
            self._publish(block.finding)
        if pattern.end_rule is End.LINE:
            self._finish(block, "end")
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
                self._lineno += 1
                block.parts.append(raw)
                block.nlines += 1
                self._finish(block, "end")
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
                self._finish(block, "panic" if hit and hit[0].kind == "panic" else "next")
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
            # The continuation regex alone decides: "BUG: memory leak" takes
            # the "unreferenced object" line after it, which starts a report.
            if not cont.match(stripped):
                self._finish(block, "end")
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
            self._finish(block, "limit")
            self._open = None
            return
        block.parts.append(text[start:end])
        block.nlines += count

    def _append(self, block: _Open, raw: str) -> None:
        self._lineno += 1
        block.parts.append(raw)
        block.nlines += 1
        if block.nlines >= MAX_BLOCK_LINES:
            self._finish(block, "limit")
            self._open = None

    @staticmethod
    def _block_text(block: _Open) -> str:
        text = "".join(block.parts)
        if "\r" in text:  # memchr; str.replace scans at a fraction of its speed
            text = text.replace("\r", "")
        return text.rstrip("\n")

    def _make_finding(self, block: _Open) -> Finding:
        pattern = block.pattern
        text = self._block_text(block)
        fields = dict(block.groups)
        fields.update(block.end_groups)
        titles, tags = pattern.titles, pattern.skip_tags
        for rt in pattern.retitles:
            value = fields.get(rt.name)
            if value is not None and rt.regex.match(value):
                titles, tags = rt.titles, (*tags, *rt.skip_tags)
                break
        corrupted = self._cut_off(block, text) or self._interleaved(block, text)
        top = fields.pop("fn", None)  # the top frame; the title wants the guilty one
        if corrupted:
            # Only the first line is trusted: its own function, if not a helper.
            guilty = guilty_frame([top] if top else [], tags)
        elif pattern.blames:
            caller = ""
            if not pattern.multi_context:
                first = _CALLER.match(text)
                caller = first.group(1) if first else ""
            stack: Iterable[str] = _stack(top, text, caller)
            guilty = ""
            if pattern.anchors:
                stack = list(stack)
                guilty = _anchor_frame(stack, pattern.anchors)
            if not guilty:
                guilty = (stall_frame(stack, tags) if pattern.anchored
                          else guilty_frame(stack, tags))
        else:
            guilty = ""
        if guilty:
            fields["fn"] = guilty
        if pattern.body_fields and not corrupted:
            _read_body_fields(pattern, text, fields)
        kind, severity = pattern.kind, pattern.severity
        if pattern.alt_kind and "alt" in block.end_groups:
            kind, severity, titles = pattern.alt_kind, pattern.alt_severity, pattern.alt_titles
        title = _format_title(titles, fields)
        return Finding(
            kind=kind,
            title=CORRUPTED_PREFIX + title if corrupted else title,
            severity=severity,
            line=block.line,
            block=text,
            corrupted=corrupted,
            guilty="" if corrupted else guilty,
        )

    @staticmethod
    def _cut_off(block: _Open, text: str) -> bool:
        """Whether the report really is cut off: its stack never ended.

        A report ended by its own end marker, or by a panic (panic_on_oom,
        panic_on_warn: the report's consequence, itself reported), is whole.
        A stack-dumping report that lost its end marker (another report
        started, the input ended, MAX_BLOCK_LINES) is still whole when its
        first call trace ended before that (:func:`_trace_ended`): a KASAN
        report cut in its "Memory state" dump, a WARNING whose "---[ end
        trace" line was lost.  A report without a stack (an OOM report, a
        lockdep held-locks list) that lost its end marker is cut off; one
        whose title needs no stack (it names no function) is not.
        """
        if block.ended in ("end", "panic") or block.pattern.end_rule is not End.MARKER:
            return False
        if not block.marker:
            return False
        if block.marker in _STACK_MARKERS:
            # A row titled by its first line alone (SLUB's "BUG cache (Not
            # tainted): ...", whose stack the WARN after it prints) loses nothing.
            return block.pattern.blames and not _trace_ended(text)
        return True

    @staticmethod
    def _interleaved(block: _Open, text: str) -> bool:
        """Whether another report's header got into a single-context block.

        Two different dump_stack()/__warn() headers ("CPU: N PID: M") mean
        two reports were printed at once.  Lines of another printk caller
        ("[T12]" among "[T34]" lines, CONFIG_PRINTK_CALLER) are not: any
        task may log while a report is printed, and the stack walk skips
        them (:func:`_stack`).
        """
        if block.pattern.multi_context:
            return False
        return text.count("PID: ") > 1 and len(set(_CONTEXT.findall(text))) > 1

    def _finish(self, block: _Open, ended: str) -> None:
        block.ended = ended
        if block.finding is not None:
            # Published on its first line; complete its block in place.
            block.finding.block = self._block_text(block)
            return
        block.finding = self._make_finding(block)
        self._publish(block.finding)

    def _publish(self, finding: Finding) -> None:
        self.findings.append(finding)
        self._new.append(finding)


#: End markers of reports that dump a stack: their completeness is the stack's.
_STACK_MARKERS = frozenset({END_TASK, END_TRACE, "=" * 20})
_TRACE_HEADER = re.compile(
    r"Call [Tt]race:|[Bb]acktrace:|^.* on cpu \d+:[ \t]*$", re.M
)
_STACK_MARK = re.compile(r"\s*</?[A-Z]+>\s*$")


def _trace_ended(text: str) -> bool:
    """Whether the block's first call trace is complete.

    x86 brackets a task's stack in "<TASK>" ... "</TASK>": complete once the
    last "<TASK>" after the header is closed.  Kernels and architectures
    without those markers: complete when at least one frame is followed by
    a line that is not a frame (registers, "---[ end trace", "Allocated
    by"...); a trace whose last line is a frame may go on.  No trace header
    at all: cut off before its stack.
    """
    header = _TRACE_HEADER.search(text)
    if header is None:
        return False
    rest = text[header.end() :]
    opened = rest.rfind("<TASK>")
    if opened >= 0:
        return rest.find("</TASK>", opened) >= 0
    framed = False
    for raw in rest.split("\n")[1:]:
        line = _strip(raw)[0]
        if "+0x" in line:
            framed = True
        elif framed and line.strip() and not _STACK_MARK.match(line):
            return True
    return False


def classify_text(text: str) -> list[Finding]:
    """Classify a whole console log or dmesg at once."""
    classifier = ConsoleClassifier()
    classifier.feed(text)
    classifier.close()
    return classifier.findings

