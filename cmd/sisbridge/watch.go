package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// watchFlags are the flags of `sisbridge watch`.
type watchFlags struct {
	url          string
	groups       stringList
	tenant, name string
	all          bool
	jsonLines    bool
	logon        string
}

// stringList is a flag given several times.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseWatch(args []string, stderr io.Writer) (watchFlags, error) {
	var w watchFlags
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&w.url, "gateway", "ws://127.0.0.1:8080"+protocol.Path, "the gateway's WebSocket URL")
	fs.Var(&w.groups, "group", "a ServiceGroupID to watch (may be given several times)")
	fs.StringVar(&w.tenant, "tenant", "", "a TenantID: with --name, one of its groups; with --all, every one")
	fs.StringVar(&w.name, "name", "", "a group's name in --tenant")
	fs.BoolVar(&w.all, "all", false, "every group of --tenant, those added later too")
	fs.BoolVar(&w.jsonLines, "json", false, "print every event as a line of JSON instead of the live view")
	fs.StringVar(&w.logon, "logon-id", "", "LogonID of a host administrator, when the gateway asks for one (the password from $SIS_PASSWORD)")
	if err := fs.Parse(args); err != nil {
		return w, err
	}
	var problems []error
	switch {
	case fs.NArg() > 0:
		problems = append(problems, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	case len(w.groups) == 0 && w.tenant == "":
		problems = append(problems, errors.New("say what to watch: --group ID, --tenant T --name N, or --tenant T --all"))
	case w.tenant != "" && (w.name == "") == !w.all:
		problems = append(problems, errors.New("--tenant takes --name N or --all"))
	}
	return w, errors.Join(problems...)
}

// requests are the Subscribes the flags ask for, statistics included.
func (w watchFlags) requests() []protocol.Request {
	yes := true
	var out []protocol.Request
	for _, g := range w.groups {
		out = append(out, protocol.Request{ServiceGroupID: g, Statistics: &yes})
	}
	switch {
	case w.all:
		out = append(out, protocol.Request{TenantID: w.tenant, AllGroups: &yes, Statistics: &yes})
	case w.tenant != "":
		out = append(out, protocol.Request{TenantID: w.tenant, ServiceGroupName: w.name, Statistics: &yes})
	}
	return out
}

// runWatch shows groups live in the terminal, or prints their events as
// JSON lines (--json), until interrupted (or q in the live view).
func runWatch(ctx context.Context, args []string, in io.Reader, out, stderr io.Writer) error {
	w, err := parseWatch(args, stderr)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	v := newWatchView()
	var sink func(protocol.Message)
	if w.jsonLines {
		enc := json.NewEncoder(out)
		var mu sync.Mutex
		sink = func(m protocol.Message) {
			mu.Lock()
			defer mu.Unlock()
			_ = enc.Encode(m)
		}
	}
	s, err := client.Connect(ctx, client.SessionConfig{URL: w.url, Positions: true, LogonID: w.logon, Password: os.Getenv("SIS_PASSWORD"),
		OnEvent: func(m protocol.Message) {
			v.event(m)
			if sink != nil {
				sink(m)
			}
		}})
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer s.Close()
	v.session = s
	for _, req := range w.requests() {
		res, err := s.Subscribe(ctx, req)
		if err != nil {
			return fmt.Errorf("watch: subscribe: %w", err)
		}
		v.named(req, res)
	}
	if w.jsonLines {
		<-ctx.Done()
		return nil
	}
	p := tea.NewProgram(&watchModel{v: v}, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen())
	v.setProgram(p)
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) && ctx.Err() == nil {
		return fmt.Errorf("watch: %w", err)
	}
	return nil
}

// watchView is what the live view shows: the session's groups and the
// latest statistics of each.
type watchView struct {
	session *client.Session
	mu      sync.Mutex
	stats   map[string]*protocol.Statistics
	names   map[string]string
	program *tea.Program
	redraw  atomic.Bool // a redraw is on its way to the program
}

func newWatchView() *watchView {
	return &watchView{stats: map[string]*protocol.Statistics{}, names: map[string]string{}}
}

// changed is the message that redraws the view after an event.
type changed struct{}

func (v *watchView) setProgram(p *tea.Program) {
	v.mu.Lock()
	v.program = p
	v.mu.Unlock()
}

// event takes an event of the session, on its reader: it must not wait.
func (v *watchView) event(m protocol.Message) {
	v.mu.Lock()
	if m.Event == protocol.EventQueueStatistics {
		v.stats[m.ServiceGroupID] = m.Statistics
	}
	p := v.program
	v.mu.Unlock()
	// one redraw at a time on its way (Send waits for the program): a
	// busy group's events do not pile up goroutines
	if p != nil && v.redraw.CompareAndSwap(false, true) {
		go p.Send(changed{})
	}
}

// named remembers the group a Subscribe by name answered for.
func (v *watchView) named(req protocol.Request, res *protocol.Result) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if req.ServiceGroupName != "" && res != nil {
		v.names[res.ServiceGroupID] = req.ServiceGroupName
	}
}

// watchModel is the bubbletea model of the live view.
type watchModel struct {
	v             *watchView
	width, height int
}

type tick time.Time

func everySecond() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tick(t) })
}

func (m *watchModel) Init() tea.Cmd { return everySecond() }

func (m *watchModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if s := msg.String(); s == "q" || s == "ctrl+c" || s == "esc" {
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tick:
		return m, everySecond()
	case changed:
		m.v.redraw.Store(false) // drawn after this: later events send again
	}
	return m, nil
}

var (
	styleTitle = lipgloss.NewStyle().Bold(true)
	styleMuted = lipgloss.NewStyle().Faint(true)
	styleWarn  = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	styleAlert = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
)

// waitStyle colours a wait: amber from a minute, red from three.
func waitStyle(d time.Duration) lipgloss.Style {
	switch {
	case d >= 3*time.Minute:
		return styleAlert
	case d >= time.Minute:
		return styleWarn
	}
	return lipgloss.NewStyle()
}

func (m *watchModel) View() string {
	groups := m.v.session.Groups()
	slices.Sort(groups)
	if len(groups) == 0 {
		return styleMuted.Render("waiting for the gateway… (q quits)") + "\n"
	}
	height := m.height
	if height <= 0 {
		height = 24
	}
	per := max(3, (height-1)/len(groups)) // lines each group may take
	var b strings.Builder
	now := time.Now()
	for _, g := range groups {
		m.group(&b, g, per, now)
	}
	b.WriteString(styleMuted.Render("q quits"))
	return b.String()
}

// group writes one group: a header with its statistics, then its
// sessions in queue order, as many as fit in lines.
func (m *watchModel) group(b *strings.Builder, g string, lines int, now time.Time) {
	seq, sessions, complete := m.v.session.View(g)
	m.v.mu.Lock()
	st, name := m.v.stats[g], m.v.names[g]
	m.v.mu.Unlock()
	title := g
	if name != "" {
		title = name + " (" + g + ")"
	}
	head := fmt.Sprintf("%s  %d waiting  Seq %d", styleTitle.Render(title), len(sessions), seq)
	if !complete {
		head += styleMuted.Render("  loading…")
	}
	if st != nil {
		head += "  " + statsLine(st)
	}
	b.WriteString(head + "\n")
	for i, s := range sessions {
		if i >= lines-2 {
			fmt.Fprintf(b, styleMuted.Render("  … %d more")+"\n", len(sessions)-i)
			break
		}
		wait := max(0, now.Sub(s.TimeEnteredQueue))
		ivr := make([]string, 0, len(s.IVRInformation))
		for _, x := range s.IVRInformation {
			ivr = append(ivr, x.Label+"="+x.Data)
		}
		fmt.Fprintf(b, "%4d  %-22s %-11s %s  %-20s %-14s %s\n", s.QueuePosition, s.CallID, s.MediaType,
			waitStyle(wait).Render(clockOf(wait)), s.CustomerInformation, s.DialedNumber, strings.Join(ivr, " "))
	}
}

// statsLine is a group's figures in a line.
func statsLine(st *protocol.Statistics) string {
	parts := []string{fmt.Sprintf("entered %d", st.Entered)}
	if st.ServiceLevel != nil {
		parts = append(parts, fmt.Sprintf("SL %.0f%%", *st.ServiceLevel*100))
	}
	if st.EstimatedWait != nil {
		parts = append(parts, "est. "+clockOf(time.Duration(*st.EstimatedWait*float64(time.Second))))
	}
	parts = append(parts, fmt.Sprintf("answered %d  abandoned %d", st.Removed["SessionAllocatedToAgent"], st.Removed["Disconnect"]))
	return styleMuted.Render(strings.Join(parts, "  "))
}

// clockOf formats a duration as mm:ss, or h:mm:ss past an hour.
func clockOf(d time.Duration) string {
	s := int(d.Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}
