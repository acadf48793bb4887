package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotorcon/tor/control"
)

// TorConfig is tor's configuration on the Go side, in one of two modes.
//
// Offline (New, NewWithSchema), before any tor runs, it builds the torrc of
// a launch: set options, add hidden services, then render it with Torrc.
//
// Online (Load), it mirrors a running tor's options. Changes are staged
// locally (Set, Append, Clear, SetHiddenServices, ...) and sent by Apply as
// one atomic SETCONF; the local copy changes only once tor has accepted.
// Reset returns options to their defaults (RESETCONF), Save persists tor's
// configuration into its torrc (SAVECONF), and a CONF_CHANGED subscription
// keeps the copy in step with changes other controllers make, until Close.
//
// Reading methods (Get, HiddenServices, Torrc, ...) return the effective
// configuration: tor's values with the staged changes on top. Current
// returns tor's value alone. A TorConfig is safe for concurrent use.
type TorConfig struct {
	opMu sync.Mutex // serializes Apply, Reset, Save and Reload

	mu       sync.Mutex
	conn     *control.Conn
	schema   *Schema
	strict   bool // refuse names the schema does not know
	cur      map[string]*slot
	staged   map[string]*slot
	order    []string // staged slot keys, in staging order
	changed  chan struct{}
	closed   bool
	log      *slog.Logger
	stopSync context.CancelFunc
	sub      *control.Subscription
	syncDone chan struct{}
}

// slot is one unit of tor's configuration that changes as a whole: a
// standalone option (all of its lines) or a Virtual group such as
// HiddenServiceOptions (the ordered lines of all its members).
type slot struct {
	name  string // canonical option or group name
	group bool
	lines []Option
}

func (s *slot) clone() *slot {
	return &slot{name: s.name, group: s.group, lines: append([]Option(nil), s.lines...)}
}

// Errors of TorConfig operations; match them with errors.Is.
var (
	// ErrOffline is returned by operations that need a running tor when
	// the TorConfig was built offline.
	ErrOffline = errors.New("config: offline TorConfig has no tor to talk to")
	// errClosed is returned by operations on a closed TorConfig.
	errClosed = fmt.Errorf("config: TorConfig is closed: %w", net.ErrClosed)
	// ErrUnapplied is returned by Save while changes are staged: SAVECONF
	// writes what tor has, so staged changes would silently be left out.
	ErrUnapplied = errors.New("config: staged changes are not applied yet")
	// ErrNeedsForce is returned by Save when tor's torrc uses %include
	// (GETINFO config-can-saveconf is 0) and SaveOptions.Force is not set.
	ErrNeedsForce = errors.New("config: SAVECONF needs FORCE")
)

// ApplyError is tor's refusal of a SETCONF or RESETCONF. Tor applies all
// options of the command or none, so after an ApplyError both tor and the
// local copy are as they were, and the changes stay staged (fix them or
// Discard them).
type ApplyError struct {
	// Command is "SETCONF" or "RESETCONF".
	Command string
	// Code is tor's status code: 552 unknown option, 513 unacceptable
	// value, 553 transition not allowed (or unable to set), 512 bad syntax.
	Code int
	// Options are the options tor's message names; when it names none of
	// those sent, every option that was sent.
	Options []string
	// Text is tor's message (meant for humans; match on Code).
	Text string
	// Err is the underlying *control.Error.
	Err error
}

// Error names the command, the options, tor's code and its message.
func (e *ApplyError) Error() string {
	return fmt.Sprintf("config: tor refused %s of %s: %d %s", e.Command, strings.Join(e.Options, ", "), e.Code, e.Text)
}

// Unwrap returns the *control.Error, so errors.Is(err,
// control.ErrInvalidConfigValue) and similar work.
func (e *ApplyError) Unwrap() error { return e.Err }

// New returns an empty offline TorConfig that builds a torrc. It knows the
// options of tor 0.4.9 (BuiltinSchema) for types and groups, but accepts
// names it does not know; check the result against the binary that will
// run it with SchemaFromBinary and Schema.checkTorrc, or use
// NewWithSchema.
func New() *TorConfig {
	return newConfig(BuiltinSchema(), false)
}

// NewWithSchema returns an empty offline TorConfig that refuses option
// names the schema does not know, typically the schema of the tor binary
// that will be launched (SchemaFromBinary): a misspelt option is caught by
// Set, before tor starts.
func NewWithSchema(s *Schema) *TorConfig {
	return newConfig(s, true)
}

func newConfig(s *Schema, strict bool) *TorConfig {
	return &TorConfig{
		schema:  s,
		strict:  strict,
		cur:     map[string]*slot{},
		staged:  map[string]*slot{},
		changed: make(chan struct{}),
		log:     slog.New(slog.DiscardHandler),
	}
}

// LoadOptions tune Load. The zero value (or nil) is the default.
type LoadOptions struct {
	// NoSync skips the CONF_CHANGED subscription: the copy then reflects
	// tor at Load time and after this TorConfig's own operations only.
	NoSync bool
	// Logger receives diagnostics (malformed events, resynchronisations).
	// Values are never logged.
	Logger *slog.Logger
}

// Load reads the configuration of the tor at the other end of conn in a
// bounded number of round trips, whatever the number of options: one
// GETINFO for the option names, types and defaults (config/names,
// config/defaults), one GETCONF for every value (hidden services and port
// groups as complete ordered groups), and, unless opts.NoSync, the
// CONF_CHANGED subscription (which the control package sets up with
// GETINFO events/names and SETEVENTS). The subscription starts before the
// values are read, so no change is missed.
//
// The TorConfig uses conn but does not own it: Close ends the
// synchronisation, and the caller closes conn.
func Load(ctx context.Context, conn *control.Conn, opts *LoadOptions) (*TorConfig, error) {
	if opts == nil {
		opts = &LoadOptions{}
	}
	var sub *control.Subscription
	if !opts.NoSync {
		var err error
		sub, err = conn.Subscribe(ctx, "CONF_CHANGED")
		if err != nil {
			return nil, fmt.Errorf("config: subscribe to CONF_CHANGED: %w", err)
		}
	}
	fail := func(err error) (*TorConfig, error) {
		if sub != nil {
			sub.Close()
		}
		return nil, err
	}
	info, err := conn.GetInfo(ctx, "config/names", "config/defaults")
	if err != nil {
		return fail(fmt.Errorf("config: read option names and defaults: %w", err))
	}
	schema, err := parseConfigNames(info[0])
	if err != nil {
		return fail(err)
	}
	if err := schema.parseDefaults(info[1]); err != nil {
		return fail(err)
	}
	c := newConfig(schema, true)
	c.conn, c.sub = conn, sub
	if opts.Logger != nil {
		c.log = opts.Logger
	}
	if err := c.fetchAll(ctx); err != nil {
		return fail(err)
	}
	if sub != nil {
		sctx, cancel := context.WithCancel(context.Background())
		c.stopSync, c.syncDone = cancel, make(chan struct{})
		go c.syncLoop(sctx)
	}
	return c, nil
}

// fetchKeys are the keys whose GETCONF gives every value: each standalone
// option and each Virtual group, whose members come back in order.
func (s *Schema) fetchKeys() []string {
	var keys []string
	for _, n := range s.order {
		o := s.byLower[strings.ToLower(n)]
		switch {
		case o.Type == typeObsolete, o.Group != "":
			continue
		}
		keys = append(keys, o.Name)
	}
	return keys
}

// fetchAll replaces the local copy with every value tor has, in one
// GETCONF (two if tor refuses keys it listed itself).
//
// With a CONF_CHANGED subscription, the events buffered before the GETCONF
// are older than its answer and are discarded: replaying them on top of
// it would bring back old values, for good when newer events were dropped.
// Tor writes every event it queued before the answer ahead of it, so once
// GetConf returns, those events are in the buffer; when some are (or more
// were dropped), the snapshot is taken again, a bounded number of times.
func (c *TorConfig) fetchAll(ctx context.Context) error {
	keys := c.schema.fetchKeys()
	for attempt := 1; ; attempt++ {
		var dropped uint64
		if c.sub != nil {
			c.drainEvents()
			dropped = c.sub.Dropped()
		}
		entries, err := c.conn.GetConf(ctx, keys...)
		if bad := unrecognizedKeys(err); len(bad) > 0 {
			c.log.Warn("config: tor refused option names it listed; skipping them", "keys", bad)
			keys = without(keys, bad)
			entries, err = c.conn.GetConf(ctx, keys...)
		}
		if err != nil {
			return fmt.Errorf("config: read option values: %w", err)
		}
		if c.sub != nil && attempt < 5 && (len(c.sub.Events()) > 0 || c.sub.Dropped() != dropped) {
			continue // changes raced with the snapshot: take it again
		}
		c.mu.Lock()
		c.cur = map[string]*slot{}
		c.mergeEntries(entries)
		c.notifyLocked()
		c.mu.Unlock()
		return nil
	}
}

// drainEvents discards the buffered events.
func (c *TorConfig) drainEvents() {
	for {
		select {
		case _, ok := <-c.sub.Events():
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// unrecognizedKeys returns the keys a 552 GETCONF error names.
func unrecognizedKeys(err error) []string {
	var cerr *control.Error
	if !errors.As(err, &cerr) || cerr.Code != 552 {
		return nil
	}
	var bad []string
	for _, l := range cerr.Lines {
		if _, rest, ok := strings.Cut(l.Text, `"`); ok {
			if k, _, ok := strings.Cut(rest, `"`); ok && k != "" {
				bad = append(bad, k)
			}
		}
	}
	return bad
}

func without(keys, drop []string) []string {
	d := map[string]bool{}
	for _, k := range drop {
		d[strings.ToLower(k)] = true
	}
	var out []string
	for _, k := range keys {
		if !d[strings.ToLower(k)] {
			out = append(out, k)
		}
	}
	return out
}

// slotOf returns the slot key and name holding option name, and whether it
// is a group.
func (c *TorConfig) slotOf(name string) (key, slotName string, group bool, info *OptionInfo) {
	info, ok := c.schema.Lookup(name)
	switch {
	case !ok:
		return strings.ToLower(name), name, false, nil
	case info.Type == typeVirtual:
		return strings.ToLower(info.Name), info.Name, true, info
	case info.Group != "":
		return strings.ToLower(info.Group), info.Group, true, info
	}
	return strings.ToLower(info.Name), info.Name, false, info
}

// mergeEntries replaces the value of every option or group the entries
// mention (a GETCONF reply or a CONF_CHANGED event): their lines are the
// complete new value, and a bare key means unset. Options and groups the
// entries do not mention keep their values.
func (c *TorConfig) mergeEntries(entries []control.ConfEntry) {
	fresh := map[string]*slot{}
	for _, e := range entries {
		key, name, group, _ := c.slotOf(e.Key)
		s := fresh[key]
		if s == nil {
			s = &slot{name: name, group: group}
			fresh[key] = s
		}
		if !e.Unset {
			s.lines = append(s.lines, Option{Key: e.Key, Value: e.Value})
		}
	}
	for k, s := range fresh {
		c.cur[k] = s
	}
}

func (c *TorConfig) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Changed returns a channel that is closed at the next change of the local
// copy of tor's values (after Load, Apply, Reset, Reload or a CONF_CHANGED
// event). Call it again for the next change.
func (c *TorConfig) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Schema returns the options this TorConfig knows (from tor for a loaded
// one).
func (c *TorConfig) Schema() *Schema { return c.schema }

// effectiveLocked returns the slot with staged changes on top.
func (c *TorConfig) effectiveLocked(key string) *slot {
	if s, ok := c.staged[key]; ok {
		return s
	}
	return c.cur[key]
}

func (c *TorConfig) valueOf(s *slot, name string, info *OptionInfo, member bool) Value {
	v := Value{Name: name}
	if info != nil {
		v.Name, v.Type = info.Name, info.Type
	}
	if s == nil {
		return v
	}
	for _, o := range s.lines {
		if !member || strings.EqualFold(o.Key, v.Name) {
			v.lines = append(v.lines, o.Value)
		}
	}
	return v
}

// Get returns the effective value of an option: the staged value when
// there is one, otherwise tor's. An unknown name gives an unset Value. For
// a member of a group (HiddenServicePort, SocksPort, ...) it returns that
// member's lines across the group, like GETCONF; for a Virtual group it
// returns the values of all its lines.
func (c *TorConfig) Get(name string) Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, _, group, info := c.slotOf(name)
	member := group && info != nil && info.Type != typeVirtual
	return c.valueOf(c.effectiveLocked(key), name, info, member)
}

// Current returns tor's value of an option as last known, ignoring staged
// changes.
func (c *TorConfig) Current(name string) Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, _, group, info := c.slotOf(name)
	member := group && info != nil && info.Type != typeVirtual
	return c.valueOf(c.cur[key], name, info, member)
}

// GroupLines returns the effective lines of a Virtual group
// ("HiddenServiceOptions", "SocksPortLines", ...) or of the group an option
// belongs to, with their option names, in order.
func (c *TorConfig) GroupLines(name string) []Option {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, _, _, _ := c.slotOf(name)
	if s := c.effectiveLocked(key); s != nil {
		return append([]Option(nil), s.lines...)
	}
	return nil
}

// Default returns tor's default for an option (unset when tor lists none,
// or for an offline TorConfig).
func (c *TorConfig) Default(name string) Value {
	if info, ok := c.schema.Lookup(name); ok {
		v := info.Default
		v.lines = append([]string(nil), v.lines...)
		return v
	}
	return Value{Name: name}
}

// IsDefault reports whether the effective value of an option equals tor's
// default, comparing typed values ("10 minutes" equals 600 seconds) or is
// unset while tor lists no default.
func (c *TorConfig) IsDefault(name string) bool {
	return c.isDefault(c.Get(name))
}

func (c *TorConfig) isDefault(v Value) bool {
	info, ok := c.schema.Lookup(v.Name)
	if !ok {
		return !v.IsSet()
	}
	if !v.IsSet() {
		return true // unset means "use the default"
	}
	return slices.Equal(v.normalized(), info.Default.normalized())
}

// resolveForWrite checks a name for Set and friends and returns its slot.
func (c *TorConfig) resolveForWrite(op, name string) (key, slotName string, group bool, info *OptionInfo, err error) {
	if err := validateOption(Option{Key: name}); err != nil {
		return "", "", false, nil, err
	}
	key, slotName, group, info = c.slotOf(name)
	if info == nil && c.strict {
		return "", "", false, nil, fmt.Errorf("config: %s: %w: %s%s", op, ErrUnknownOption, name, c.schema.suggest(name))
	}
	if group && strings.EqualFold(slotName, hsGroup) {
		return "", "", false, nil, fmt.Errorf("%w: %s %s: hidden-service options are set per service with SetHiddenServices, AddHiddenService or RemoveHiddenService", ErrInvalidOption, op, name)
	}
	return key, slotName, group, info, nil
}

const hsGroup = "HiddenServiceOptions"

func (c *TorConfig) checkOpen() error {
	if c.closed {
		return errClosed
	}
	return nil
}

// stageLocked records a new staged value for a slot.
func (c *TorConfig) stageLocked(key string, s *slot) {
	if _, ok := c.staged[key]; !ok {
		c.order = append(c.order, key)
	}
	c.staged[key] = s
}

// Set stages new values for an option, replacing all of its values: one
// for a single-valued option, any number for a multi-valued one (LineList
// such as Log, or a port option such as SocksPort). Set with no values is
// Clear. Values are bytes as tor should see them; they are escaped when
// sent or rendered. Nothing reaches tor until Apply.
func (c *TorConfig) Set(name string, values ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setLocked(name, values)
}

func (c *TorConfig) setLocked(name string, values []string) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	key, slotName, group, info, err := c.resolveForWrite("Set", name)
	if err != nil {
		return err
	}
	if info != nil {
		name = info.Name
		if info.Type == typeVirtual && len(values) > 0 {
			return fmt.Errorf("%w: %s is a virtual option: set its members (%s)", ErrInvalidOption, name, strings.Join(c.schema.Members(name), ", "))
		}
		if len(values) > 1 && !info.MultiValued() && info.Type != typeUnknown {
			return fmt.Errorf("%w: %s (%s) takes one value, got %d", ErrInvalidOption, name, info.Type, len(values))
		}
	}
	for _, v := range values {
		if err := validateOption(Option{Key: name, Value: v}); err != nil {
			return err
		}
	}
	var s *slot
	switch {
	case info != nil && info.Type == typeVirtual:
		s = &slot{name: slotName, group: true} // clearing the whole group
	case group:
		base := c.effectiveLocked(key)
		t := &Torrc{}
		if base != nil {
			t.opts = append(t.opts, base.lines...)
		}
		t.Set(name, values...)
		s = &slot{name: slotName, group: true, lines: t.Options()}
	default:
		s = &slot{name: slotName}
		for _, v := range values {
			s.lines = append(s.lines, Option{Key: name, Value: v})
		}
	}
	c.stageLocked(key, s)
	return nil
}

// Append stages values added after the current values of a multi-valued
// option (tor has no append: Apply sends the whole list).
func (c *TorConfig) Append(name string, values ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if info, ok := c.schema.Lookup(name); ok && (info.Type == typeVirtual || info.Type != typeUnknown && !info.MultiValued()) {
		return fmt.Errorf("%w: %s (%s) cannot be appended to", ErrInvalidOption, info.Name, info.Type)
	}
	return c.setLocked(name, append(c.valueOfLocked(name).Lines(), values...))
}

func (c *TorConfig) valueOfLocked(name string) Value {
	key, _, group, info := c.slotOf(name)
	member := group && info != nil && info.Type != typeVirtual
	return c.valueOf(c.effectiveLocked(key), name, info, member)
}

// Clear stages an option without any value: an empty list for a
// multi-valued option, and for a single-valued one tor's "empty" (0, or
// nothing), which is not always its default: Reset restores defaults.
// Clearing a Virtual group (such as "SocksPortLines") empties the group.
func (c *TorConfig) Clear(name string) error { return c.Set(name) }

// SetBool stages a Boolean option.
func (c *TorConfig) SetBool(name string, b bool) error { return c.Set(name, formatBool(b)) }

// SetInt stages an Integer or SignedInteger option.
func (c *TorConfig) SetInt(name string, n int64) error {
	return c.Set(name, strconv.FormatInt(n, 10))
}

// SetDuration stages a TimeInterval option (whole seconds) or a
// TimeMsecInterval option (whole milliseconds).
func (c *TorConfig) SetDuration(name string, d time.Duration) error {
	if info, ok := c.schema.Lookup(name); ok && info.Type == typeTimeMsecInterval {
		return c.Set(name, formatMsecDuration(d))
	}
	return c.Set(name, formatDuration(d))
}

// SetDataSize stages a DataSize option in bytes.
func (c *TorConfig) SetDataSize(name string, bytes uint64) error {
	return c.Set(name, strconv.FormatUint(bytes, 10)+" bytes")
}

// HiddenServices returns the effective hidden services, in order.
func (c *TorConfig) HiddenServices() []HiddenService {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hiddenServicesLocked()
}

func (c *TorConfig) hiddenServicesLocked() []HiddenService {
	if s := c.effectiveLocked(strings.ToLower(hsGroup)); s != nil {
		return ParseHiddenServices(s.lines)
	}
	return nil
}

// SetHiddenServices stages the complete list of hidden services, in order,
// replacing every configured one (none: remove them all). Apply sends
// every service's complete group in one SETCONF, as tor requires.
func (c *TorConfig) SetHiddenServices(hs ...HiddenService) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setHiddenServicesLocked(hs)
}

func (c *TorConfig) setHiddenServicesLocked(hs []HiddenService) error {
	if err := c.checkOpen(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, h := range hs {
		if err := h.validate(); err != nil {
			return err
		}
		if seen[h.Dir] {
			return fmt.Errorf("%w: hidden service directory %s appears twice", ErrInvalidOption, h.Dir)
		}
		seen[h.Dir] = true
	}
	if c.strict {
		var names []string
		for _, o := range hiddenServiceLines(hs) {
			names = append(names, o.Key)
		}
		if err := c.schema.CheckNames(names...); err != nil {
			return err
		}
	}
	c.stageLocked(strings.ToLower(hsGroup), &slot{name: hsGroup, group: true, lines: hiddenServiceLines(hs)})
	return nil
}

// AddHiddenService stages one more hidden service after the existing ones.
// Its directory must not be configured already.
func (c *TorConfig) AddHiddenService(h HiddenService) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.hiddenServicesLocked()
	return c.setHiddenServicesLocked(append(hs, h.clone()))
}

// RemoveHiddenService stages the removal of the hidden service with the
// given directory; it reports whether there was one.
func (c *TorConfig) RemoveHiddenService(dir string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.hiddenServicesLocked()
	kept := hs[:0]
	found := false
	for _, h := range hs {
		if h.Dir == dir {
			found = true
			continue
		}
		kept = append(kept, h)
	}
	if !found {
		return false, nil
	}
	return true, c.setHiddenServicesLocked(kept)
}

// Pending returns the names of the options and groups with staged changes,
// in staging order.
func (c *TorConfig) Pending() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, k := range c.order {
		names = append(names, c.staged[k].name)
	}
	return names
}

// Discard drops the staged changes of the given options (all staged
// changes when none are given).
func (c *TorConfig) Discard(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(names) == 0 {
		c.staged, c.order = map[string]*slot{}, nil
		return
	}
	for _, n := range names {
		key, _, _, _ := c.slotOf(n)
		c.unstageLocked(key, nil)
	}
}

// unstageLocked removes the staged slot key (only if it is still want,
// when want is not nil).
func (c *TorConfig) unstageLocked(key string, want *slot) {
	s, ok := c.staged[key]
	if !ok || (want != nil && s != want) {
		return
	}
	delete(c.staged, key)
	for i, k := range c.order {
		if k == key {
			c.order = append(c.order[:i:i], c.order[i+1:]...)
			break
		}
	}
}

// entriesOf renders staged slots as SETCONF arguments.
func entriesOf(slots []*slot) []control.ConfEntry {
	var e []control.ConfEntry
	for _, s := range slots {
		if len(s.lines) == 0 {
			e = append(e, control.ConfEntry{Key: s.name, Unset: true})
			continue
		}
		for _, o := range s.lines {
			e = append(e, control.ConfEntry{Key: o.Key, Value: o.Value})
		}
	}
	return e
}

// Apply sends every staged change to tor in one SETCONF: all values of a
// multi-valued option, complete hidden-service and port groups, in
// staging order. Tor applies all of them or none. Only after tor's 250
// does the local copy change: it is then read back with one GETCONF of the
// changed options, so it holds tor's own rendering ("5 minutes" becomes
// 300). On refusal the error is an *ApplyError naming the option and code,
// and tor, the local copy and the staged changes are unchanged. Apply
// with nothing staged does nothing.
func (c *TorConfig) Apply(ctx context.Context) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	if err := c.checkOnlineLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	keys := append([]string(nil), c.order...)
	slots := make([]*slot, len(keys))
	for i, k := range keys {
		slots[i] = c.staged[k]
	}
	var hsErr error
	if st, ok := c.staged[strings.ToLower(hsGroup)]; ok {
		var old []HiddenService
		if cur := c.cur[strings.ToLower(hsGroup)]; cur != nil {
			old = ParseHiddenServices(cur.lines)
		}
		hsErr = checkNewServiceDirs(old, ParseHiddenServices(st.lines))
	}
	c.mu.Unlock()
	if len(slots) == 0 {
		return nil
	}
	if hsErr != nil {
		return hsErr
	}
	entries := entriesOf(slots)
	if err := c.conn.SetConf(ctx, entries...); err != nil {
		return applyError("SETCONF", err, entries)
	}
	var names []string
	for _, s := range slots {
		names = append(names, s.name)
	}
	got, gerr := c.conn.GetConf(ctx, names...)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		c.unstageLocked(k, slots[i])
	}
	if gerr != nil {
		// Tor took the changes; keep what was sent as the best knowledge.
		for i, k := range keys {
			c.cur[k] = slots[i].clone()
		}
		c.notifyLocked()
		return fmt.Errorf("config: changes applied, but reading them back failed: %w", gerr)
	}
	c.mergeEntries(got)
	c.notifyLocked()
	return nil
}

func (c *TorConfig) checkOnlineLocked() error {
	if c.conn == nil {
		return ErrOffline
	}
	return c.checkOpen()
}

// applyError turns tor's refusal into an *ApplyError naming the options.
func applyError(cmd string, err error, sent []control.ConfEntry) error {
	var cerr *control.Error
	if !errors.As(err, &cerr) {
		return fmt.Errorf("config: %s: %w", cmd, err)
	}
	var all, named []string
	seen := map[string]bool{}
	for _, e := range sent {
		if seen[strings.ToLower(e.Key)] {
			continue
		}
		seen[strings.ToLower(e.Key)] = true
		all = append(all, e.Key)
		if mentions(cerr.Text, e.Key) {
			named = append(named, e.Key)
		}
	}
	if len(named) == 0 && strings.Contains(cerr.Text, "rendezvous options") {
		// Tor's message for a bad hidden-service group names no option.
		for _, k := range all {
			if strings.HasPrefix(strings.ToLower(k), "hiddenservice") {
				named = append(named, k)
			}
		}
	}
	if len(named) == 0 {
		named = all
	}
	return &ApplyError{Command: cmd, Code: cerr.Code, Options: named, Text: cerr.Text, Err: err}
}

// mentions reports whether text contains name as a whole word
// (case-insensitively).
func mentions(text, name string) bool {
	lt, ln := strings.ToLower(text), strings.ToLower(name)
	for i := 0; ; {
		j := strings.Index(lt[i:], ln)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(ln)
		if (j == 0 || !isWordByte(lt[j-1])) && (end == len(lt) || !isWordByte(lt[end])) {
			return true
		}
		i = j + 1
	}
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// Reset returns options to tor's defaults at once with one RESETCONF
// (atomic across the names), then reads them back with one GETCONF. It is
// not staged: staged changes of these options are dropped. Resetting a
// member of a group (SocksPort, HiddenServiceDir, ...) resets the whole
// group; "HiddenServiceOptions" removes every hidden service.
func (c *TorConfig) Reset(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	err := c.checkOnlineLocked()
	var entries []control.ConfEntry
	var keys, slotNames []string
	for _, n := range names {
		if err != nil {
			break
		}
		if verr := validateOption(Option{Key: n}); verr != nil {
			err = verr
			break
		}
		key, slotName, _, info := c.slotOf(n)
		if info == nil {
			err = fmt.Errorf("config: Reset: %w: %s%s", ErrUnknownOption, n, c.schema.suggest(n))
			break
		}
		entries = append(entries, control.ConfEntry{Key: info.Name, Unset: true})
		keys, slotNames = append(keys, key), append(slotNames, slotName)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.conn.ResetConf(ctx, entries...); err != nil {
		return applyError("RESETCONF", err, entries)
	}
	got, gerr := c.conn.GetConf(ctx, slotNames...)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.unstageLocked(k, nil)
	}
	if gerr != nil {
		return fmt.Errorf("config: options reset, but reading them back failed: %w", gerr)
	}
	c.mergeEntries(got)
	c.notifyLocked()
	return nil
}

// Reload reads every value from tor again (one GETCONF), for example after
// a SIGHUP made tor re-read its torrc while no CONF_CHANGED subscription
// was running. Staged changes are kept.
func (c *TorConfig) Reload(ctx context.Context) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	err := c.checkOnlineLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.fetchAll(ctx)
}

// SaveOptions tune Save. The zero value is the safe default.
type SaveOptions struct {
	// Force sends SAVECONF FORCE, which tor needs to overwrite a torrc that
	// uses %include (GETINFO config-can-saveconf is 0).
	Force bool
	// AllowUnowned saves even when tor's torrc was not written by this
	// library (see isOwnedTorrc): tor then overwrites somebody else's file,
	// such as /etc/tor/torrc, renaming the old one to torrc.orig.1. Only
	// for callers who know that this is what they want.
	AllowUnowned bool
}

// Save persists tor's current configuration into the torrc tor was started
// with (SAVECONF), so it survives a restart. It is refused, with nothing
// sent but one GETINFO (config-file, config-can-saveconf), when that torrc
// was not written by this library (ErrNotOurTorrc; see WriteOwnedTorrc)
// unless opts.AllowUnowned, when it uses %include unless opts.Force
// (ErrNeedsForce), and while changes are staged (ErrUnapplied): Apply
// them first, or Discard them. Tor rewrites the whole file and drops its
// comments; options starting with "__" are not saved.
func (c *TorConfig) Save(ctx context.Context, opts SaveOptions) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	err := c.checkOnlineLocked()
	if err == nil && len(c.staged) > 0 {
		err = fmt.Errorf("%w (%d staged): Apply or Discard them before Save", ErrUnapplied, len(c.staged))
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	info, err := c.conn.GetInfo(ctx, "config-file", "config-can-saveconf")
	if err != nil {
		return fmt.Errorf("config: ask tor for its torrc: %w", err)
	}
	path := info[0]
	if !opts.AllowUnowned {
		owned, err := isOwnedTorrc(path)
		if err != nil {
			return fmt.Errorf("config: check whether %s is ours: %w", path, err)
		}
		if !owned {
			return fmt.Errorf("%w: tor would overwrite %s (no %s sidecar); pass SaveOptions{AllowUnowned: true} to overwrite it anyway", ErrNotOurTorrc, path, ownedSuffix)
		}
	}
	if info[1] == "0" && !opts.Force {
		return fmt.Errorf("%w: %s uses %%include, which SAVECONF would replace by the options themselves; pass SaveOptions{Force: true} to do so", ErrNeedsForce, path)
	}
	if err := c.conn.SaveConf(ctx, opts.Force); err != nil {
		return fmt.Errorf("config: SAVECONF to %s: %w", path, err)
	}
	return nil
}

// Close ends the synchronisation with tor: the CONF_CHANGED subscription
// is closed and its goroutine has ended when Close returns. The connection
// stays open (it belongs to the caller). Afterwards the TorConfig can
// still be read, but not changed. Close is safe to call more than once.
func (c *TorConfig) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	stop, sub, done := c.stopSync, c.sub, c.syncDone
	c.mu.Unlock()
	if stop != nil {
		stop()
		sub.Close()
		<-done
	}
	return nil
}

// syncLoop applies CONF_CHANGED events until Close or the end of the
// connection. When events were dropped (the subscription's buffer
// overflowed) or one cannot be parsed, it reads every value again.
func (c *TorConfig) syncLoop(ctx context.Context) {
	defer close(c.syncDone)
	dropped := c.sub.Dropped()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-c.sub.Events():
			if !ok {
				return
			}
			resync := false
			p, err := ev.Parsed()
			cc, ok := p.(*control.ConfChangedEvent)
			if err != nil || !ok {
				c.log.Warn("config: malformed CONF_CHANGED event; reading every value again", "err", err)
				resync = true
			} else {
				c.mu.Lock()
				c.mergeEntries(cc.Entries)
				c.notifyLocked()
				c.mu.Unlock()
			}
			if d := c.sub.Dropped(); d != dropped {
				c.log.Warn("config: CONF_CHANGED events were dropped; reading every value again", "dropped", d-dropped)
				resync = true
			}
			if resync {
				if err := c.fetchAll(ctx); err != nil && ctx.Err() == nil {
					c.log.Warn("config: resynchronisation failed", "err", err)
				}
				dropped = c.sub.Dropped()
			}
		}
	}
}

// Torrc renders the effective configuration as a torrc: for an offline
// TorConfig every option set, in the order it was first set; for a loaded
// one the options whose value differs from tor's default (in tor's order,
// without the controller-only "__" options), then staged options. Hidden
// services and port groups come out as complete ordered groups. Cleared
// options have no line.
func (c *TorConfig) Torrc() *Torrc {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Torrc{}
	done := map[string]bool{}
	for _, n := range c.schema.order {
		key := strings.ToLower(n)
		s, ok := c.cur[key]
		if !ok || strings.HasPrefix(n, "__") {
			continue
		}
		if st, ok := c.staged[key]; ok {
			s = st
		} else if !s.group && c.isDefault(c.valueOf(s, s.name, c.schema.byLower[key], false)) {
			continue
		}
		done[key] = true
		for _, o := range s.lines {
			if !strings.HasPrefix(o.Key, "__") {
				t.opts = append(t.opts, o)
			}
		}
	}
	for _, key := range c.order {
		if !done[key] {
			t.opts = append(t.opts, c.staged[key].lines...)
		}
	}
	return t
}
