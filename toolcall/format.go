// Package toolcall knows how models write tool calls and reasoning: the
// formats of the known model families, which one a chat template uses
// (Detect), a streaming parser that splits model output into content,
// reasoning and calls (Parser), and the grammar that forces output to be
// a valid call of given tools (CallGrammar).
package toolcall

import "strings"

// Shape is how one call is written between a format's markers.
type Shape int

const (
	// Object: one JSON object holding the name and the arguments.
	Object Shape = iota
	// Array: a JSON array of such objects (all the calls at once).
	Array
	// Named: the function name as text, NameEnd, then the arguments as
	// a JSON object.
	Named
)

// Format is a family's way of writing tool calls. A Format is immutable.
type Format struct {
	Name  string // family name, as `sluice info` shows it
	Shape Shape
	// Start opens a call (Object, Named) or the list of calls (Array);
	// End closes it and may be empty.
	Start, End string
	// NameEnd ends the function name (Named only).
	NameEnd string
	// NameKey and ArgsKeys are the object keys of the name and the
	// arguments (Object, Array); ArgsKeys[0] is what the grammar writes.
	NameKey  string
	ArgsKeys []string
	// BareJSON: a call may also be a bare JSON object that starts the
	// output, without Start.
	BareJSON bool
	// Open and Close surround all the calls of a turn (DeepSeek R1);
	// the parser drops them from content.
	Open, Close string
	// Sep separates calls the grammar writes (Object and Named).
	Sep string
	// OneCall: the family writes one call per turn (Llama 3.x does not
	// do parallel calls), so the grammar allows one.
	OneCall bool
	// Extra are leading properties of each call object the grammar
	// writes (Command R7B's tool_call_id): JSON Schema "properties"
	// entries, each followed by a comma.
	Extra string
}

var argsKeys = []string{"arguments", "parameters"}

// The known formats.
var (
	Hermes = &Format{Name: "hermes", Shape: Object, Start: "<tool_call>", End: "</tool_call>",
		NameKey: "name", ArgsKeys: argsKeys, Sep: "\n"}
	Llama3 = &Format{Name: "llama3", Shape: Object, Start: "<|python_tag|>", NameKey: "name",
		ArgsKeys: []string{"parameters", "arguments"}, BareJSON: true, OneCall: true}
	Mistral    = &Format{Name: "mistral", Shape: Array, Start: "[TOOL_CALLS]", NameKey: "name", ArgsKeys: argsKeys}
	DeepSeekR1 = &Format{Name: "deepseek-r1", Shape: Named,
		Start: "<｜tool▁call▁begin｜>function<｜tool▁sep｜>", NameEnd: "\n```json\n", End: "\n```<｜tool▁call▁end｜>",
		Open: "<｜tool▁calls▁begin｜>", Close: "<｜tool▁calls▁end｜>", Sep: "\n"}
	FunctionaryV31 = &Format{Name: "functionary-v3.1", Shape: Named, Start: "<function=", NameEnd: ">", End: "</function>"}
	FunctionaryV32 = &Format{Name: "functionary-v3.2", Shape: Named, Start: ">>>", NameEnd: "\n"}
	CommandR7B     = &Format{Name: "command-r7b", Shape: Array, Start: "<|START_ACTION|>", End: "<|END_ACTION|>",
		NameKey: "tool_name", ArgsKeys: []string{"parameters", "arguments"}, Extra: `"tool_call_id":{"const":"0"},`}
	Firefunction = &Format{Name: "firefunction-v2", Shape: Array, Start: " functools", NameKey: "name", ArgsKeys: argsKeys}
	Generic      = &Format{Name: "generic", Shape: Object, Start: "<tool_call>", End: "</tool_call>",
		NameKey: "name", ArgsKeys: argsKeys, BareJSON: true, Sep: "\n"}
)

// Formats lists the known formats, Generic last.
var Formats = []*Format{Hermes, Llama3, Mistral, DeepSeekR1, FunctionaryV31, FunctionaryV32, CommandR7B, Firefunction, Generic}

// detectors recognise a family by markers in its chat template's source,
// most specific first (Functionary v3.1 also writes <|python_tag|>).
var detectors = []struct {
	markers []string
	f       *Format
}{
	{[]string{"<function="}, FunctionaryV31},
	{[]string{">>>", "recipient"}, FunctionaryV32},
	{[]string{"<tool_call>"}, Hermes},
	{[]string{"[TOOL_CALLS]"}, Mistral},
	{[]string{"tool▁call▁begin"}, DeepSeekR1},
	{[]string{"<|START_ACTION|>"}, CommandR7B},
	{[]string{"functools["}, Firefunction},
	{[]string{"<|python_tag|>"}, Llama3},
	{[]string{"<|start_header_id|>", "parameters"}, Llama3}, // Llama 3.2: JSON calls, no python tag
}

// Detect returns the tool-call format a chat template's source writes,
// and whether it was recognised; an unknown template gets Generic.
func Detect(src string) (*Format, bool) {
	for _, d := range detectors {
		all := true
		for _, m := range d.markers {
			all = all && strings.Contains(src, m)
		}
		if all {
			return d.f, true
		}
	}
	return Generic, false
}

// Thinks reports whether a template's source marks reasoning with
// <think> ... </think>.
func Thinks(src string) bool { return strings.Contains(src, "</think>") }
