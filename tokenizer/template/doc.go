// Package template renders chat templates: a Jinja2 interpreter covering
// what model chat templates use, with Python Jinja2's exact whitespace
// handling and Python value semantics, configured the way Hugging Face
// transformers renders them: trim_blocks and lstrip_blocks on, one trailing
// newline of the source dropped, loop controls (break/continue), globals
// raise_exception and strftime_now, and a tojson filter that is Python's
// json.dumps(x, ensure_ascii=False, indent=...) without HTML escaping.
//
// Supported: {{ }}, {% %}, {# #}, whitespace control (-, +), raw; if/elif/
// else, for (tuple targets, "if" filter, else, recursive, loop.index/
// index0/revindex/revindex0/first/last/length/previtem/nextitem/depth/
// cycle/changed), break, continue, set (also block set with filters and
// namespace attributes), macro (defaults, keyword arguments, varargs,
// kwargs, caller), call blocks, filter blocks, with, and Hugging Face's
// generation block; literals, lists, tuples, dicts, attribute and item
// access, slicing, all Jinja operators and tests, inline if/else, the usual
// filters (tojson, trim, upper, lower, title, capitalize, length, first,
// last, join, default, items, list, string, int, float, replace, select,
// reject, selectattr, rejectattr, map, unique, sort, dictsort, round,
// indent, safe, escape, format, sum, min, max, reverse, batch, center,
// truncate, wordcount, striptags, attr, abs, pprint) and the str, dict and
// list methods of Python that a sandboxed environment allows.
//
// Values follow Python: dicts keep insertion order (see Map), None/True/
// False print as in Python, containers print as their repr, ints and floats
// mix as in Python, "+" on str and dict fails like Python, and safe/escape
// produce Markup, which escapes plain strings added to it. As in Hugging
// Face's sandbox, mutating methods (list.append, dict.update, ...) are
// refused.
//
// Differences from Python Jinja2: integers are 64-bit (overflow is an
// error); dict keys must be strings; map/select/reject/unique return lists
// where Python returns generators (so "x|map(...)|tojson" renders instead
// of failing); range() returns a list; include/import/extends/block, the
// do statement and the groupby, slice, urlize, wordwrap, xmlattr and
// filesizeformat filters are not implemented; strftime_now uses the C
// locale.
//
// Templates come from model files and are untrusted: rendering is bounded
// in output size, work (loop iterations, calls and the size of values
// operated on) and recursion depth, reports errors with line numbers, and
// does not panic.
package template
