// Package ui holds argon's terminal plumbing: the streams a command writes
// to, whether they are terminals, colour, and table and JSON printing.
package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/mattn/go-isatty"
	"github.com/muesli/termenv"
)

// IOStreams are the streams of one command run.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Quiet silences progress lines (--quiet).
	Quiet bool

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	color     bool

	pager   *exec.Cmd
	pagerIn io.WriteCloser
}

// System returns the process's streams, with terminal detection and the
// NO_COLOR / CLICOLOR / ARGON_FORCE_TTY conventions applied.
func System() *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	s.stdinTTY = isTTY(os.Stdin)
	s.stdoutTTY = isTTY(os.Stdout)
	s.stderrTTY = isTTY(os.Stderr)
	if v := os.Getenv("ARGON_FORCE_TTY"); v != "" && v != "0" && v != "false" {
		s.stdoutTTY, s.stderrTTY = true, true
	}
	s.color = s.stdoutTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("CLICOLOR") != "0"
	return s
}

// Test returns streams backed by buffers, with no terminal.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// TestTerminal returns streams backed by buffers that say they are a
// terminal a user answers on (stdin and stderr), reading the answers from
// in.
func TestTerminal(in io.Reader) (*IOStreams, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, stdinTTY: true, stderrTTY: true}, out, errOut
}

func isTTY(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStderrTTY reports whether stderr is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// ColorEnabled reports whether output may carry colour.
func (s *IOStreams) ColorEnabled() bool { return s.color }

// CanPrompt reports whether the user can answer a question.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// Styles returns the styles for stdout: real ones on a colour terminal,
// plain ones otherwise.
func (s *IOStreams) Styles() Styles {
	r := lipgloss.NewRenderer(s.Out)
	if s.color {
		r.SetColorProfile(termenv.ANSI256)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return Styles{
		Header:  r.NewStyle().Bold(true),
		Current: r.NewStyle().Foreground(lipgloss.Color("2")).Bold(true),
		Dim:     r.NewStyle().Foreground(lipgloss.Color("8")),
		LSN:     r.NewStyle().Foreground(lipgloss.Color("3")),
		Error:   r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		Added:   r.NewStyle().Foreground(lipgloss.Color("2")),
		Removed: r.NewStyle().Foreground(lipgloss.Color("1")),
		Changed: r.NewStyle().Foreground(lipgloss.Color("3")),
	}
}

// Styles are the text styles argon uses.
type Styles struct {
	Header, Current, Dim, LSN, Error lipgloss.Style
	// Added, Removed and Changed colour diff lines as git does.
	Added, Removed, Changed lipgloss.Style
}

// PrintJSON writes v as one JSON value: indented on a terminal, compact
// otherwise.
func (s *IOStreams) PrintJSON(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if s.stdoutTTY {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := s.Out.Write(buf.Bytes())
	return err
}

// JSONArray writes a JSON array to standard output one element at a time,
// byte for byte as PrintJSON writes the whole array, for output too large
// to hold: StartJSONArray, Add each element (one JSON value), End.
type JSONArray struct {
	w      *bufio.Writer
	indent bool
	n      int
	buf    bytes.Buffer
}

// StartJSONArray starts a JSON array on standard output.
func (s *IOStreams) StartJSONArray() *JSONArray {
	return &JSONArray{w: bufio.NewWriterSize(s.Out, 64<<10), indent: s.stdoutTTY}
}

// Add writes one element.
func (a *JSONArray) Add(v []byte) error {
	a.buf.Reset()
	var err error
	if a.indent {
		err = json.Indent(&a.buf, v, "  ", "  ")
	} else {
		err = json.Compact(&a.buf, v)
	}
	if err != nil {
		return err
	}
	switch {
	case a.n == 0 && a.indent:
		a.w.WriteString("[\n  ")
	case a.n == 0:
		a.w.WriteString("[")
	case a.indent:
		a.w.WriteString(",\n  ")
	default:
		a.w.WriteString(",")
	}
	a.n++
	_, err = a.w.Write(a.buf.Bytes())
	return err
}

// End closes the array and flushes it.
func (a *JSONArray) End() error {
	switch {
	case a.n == 0:
		a.w.WriteString("[]\n")
	case a.indent:
		a.w.WriteString("\n]\n")
	default:
		a.w.WriteString("]\n")
	}
	return a.w.Flush()
}

// Table prints rows: on a terminal as aligned columns under a bold header,
// otherwise as tab-separated lines with no header and no escape codes.
type Table struct {
	s      *IOStreams
	header []string
	rows   [][]cell
}

type cell struct {
	text  string
	style *lipgloss.Style
}

// NewTable starts a table with the given column names.
func (s *IOStreams) NewTable(header ...string) *Table {
	return &Table{s: s, header: header}
}

// Row adds a row of plain cells.
func (t *Table) Row(cells ...string) {
	r := make([]cell, len(cells))
	for i, c := range cells {
		r[i] = cell{text: c}
	}
	t.rows = append(t.rows, r)
}

// StyledRow adds a row whose cells carry styles (used on a terminal only).
func (t *Table) StyledRow(cells []string, styles []*lipgloss.Style) {
	r := make([]cell, len(cells))
	for i, c := range cells {
		r[i] = cell{text: c}
		if i < len(styles) {
			r[i].style = styles[i]
		}
	}
	t.rows = append(t.rows, r)
}

// Render writes the table.
func (t *Table) Render() error {
	w := t.s.Out
	if !t.s.stdoutTTY {
		for _, r := range t.rows {
			texts := make([]string, len(r))
			for i, c := range r {
				texts[i] = strings.ReplaceAll(strings.ReplaceAll(c.text, "\t", " "), "\n", " ")
			}
			if _, err := fmt.Fprintln(w, strings.Join(texts, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	st := t.s.Styles()
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = lipgloss.Width(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], lipgloss.Width(c.text))
			}
		}
	}
	line := func(cells []cell, header bool) string {
		var b strings.Builder
		for i, c := range cells {
			text := c.text
			pad := ""
			if i < len(cells)-1 {
				pad = strings.Repeat(" ", widths[i]-lipgloss.Width(text)+2)
			}
			switch {
			case header:
				text = st.Header.Render(text)
			case c.style != nil:
				text = c.style.Render(text)
			}
			b.WriteString(text + pad)
		}
		return strings.TrimRight(b.String(), " ")
	}
	hc := make([]cell, len(t.header))
	for i, h := range t.header {
		hc[i] = cell{text: h}
	}
	if _, err := fmt.Fprintln(w, line(hc, true)); err != nil {
		return err
	}
	for _, r := range t.rows {
		if _, err := fmt.Fprintln(w, line(r, false)); err != nil {
			return err
		}
	}
	return nil
}

// Clean makes user-supplied text safe to print on a terminal: control
// characters (escape sequences, carriage returns, and newlines unless
// keepNewlines) are shown as Go escapes instead of being sent raw.
func Clean(s string, keepNewlines bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' && keepNewlines, r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// StartPager sends what the command prints on standard output through a
// pager when standard output is a terminal: ARGON_PAGER, else PAGER, else
// "less -FRX" (which quits at once when the output fits the screen). It
// does nothing when output is piped, when the pager is "" or "cat", or
// when the pager cannot be started. StopPager waits for it.
func (s *IOStreams) StartPager() {
	if !s.stdoutTTY || s.pager != nil {
		return
	}
	cmdline, set := os.LookupEnv("ARGON_PAGER")
	if !set {
		cmdline, set = os.LookupEnv("PAGER")
	}
	if !set {
		cmdline = "less -FRX"
	}
	if strings.TrimSpace(cmdline) == "" || strings.TrimSpace(cmdline) == "cat" {
		return
	}
	c := exec.Command("sh", "-c", cmdline)
	c.Stdout, c.Stderr = s.Out, s.ErrOut
	c.Env = append(os.Environ(), "LESS=FRX", "LV=-c")
	w, err := c.StdinPipe()
	if err != nil {
		return
	}
	if err := c.Start(); err != nil {
		return
	}
	s.pager, s.pagerIn, s.Out = c, w, w
}

// StopPager closes the pager's input and waits for the pager to exit.
func (s *IOStreams) StopPager() {
	if s.pager == nil {
		return
	}
	_ = s.pagerIn.Close()
	_ = s.pager.Wait()
	s.Out = s.pager.Stdout
	s.pager = nil
}
