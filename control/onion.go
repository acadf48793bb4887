package control

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Key types and blobs for [AddOnionRequest].
const (
	// KeyTypeNew asks tor to generate a key; KeyBlob is then KeyBlobBest or
	// KeyBlobED25519V3.
	KeyTypeNew = "NEW"
	// KeyTypeED25519V3 imports a key: KeyBlob is the base64 of the 64-byte
	// expanded ed25519 secret key (not the RFC 8032 seed).
	KeyTypeED25519V3 = "ED25519-V3"
	KeyBlobBest      = "BEST"
	KeyBlobED25519V3 = "ED25519-V3"
)

// ADD_ONION flags (case-insensitive to tor).
const (
	// FlagDiscardPK leaves the private key out of the reply.
	FlagDiscardPK = "DiscardPK"
	// FlagDetach makes the service outlive the control connection; delete it
	// with DEL_ONION.
	FlagDetach = "Detach"
	// FlagV3Auth requires client authorization (ClientAuthV3 keys).
	FlagV3Auth = "V3Auth"
	// FlagNonAnonymous creates a single-hop service (needs tor configured
	// with HiddenServiceSingleHopMode and HiddenServiceNonAnonymousMode).
	FlagNonAnonymous = "NonAnonymous"
	// FlagMaxStreamsCloseCircuit closes the circuit when MaxStreams is
	// exceeded instead of refusing the stream.
	FlagMaxStreamsCloseCircuit = "MaxStreamsCloseCircuit"
)

// OnionPort maps a virtual port of an onion service to a target.
type OnionPort struct {
	// VirtPort is the port clients connect to (1-65535).
	VirtPort int
	// Target is where tor forwards connections: "PORT", "ADDR:PORT",
	// "[IPv6]:PORT" or "unix:/path". Empty means 127.0.0.1:VirtPort. Tor
	// accepts no quoting here, so a target cannot contain spaces.
	Target string
}

// AddOnionRequest describes an ADD_ONION command (control-spec §3.27).
type AddOnionRequest struct {
	// KeyType and KeyBlob select the key: KeyTypeNew with KeyBlobBest (the
	// default when both are empty), or KeyTypeED25519V3 with a base64
	// expanded secret key.
	KeyType, KeyBlob string
	// Ports lists at least one virtual port.
	Ports []OnionPort
	// Flags are ADD_ONION flags such as FlagDetach and FlagDiscardPK.
	Flags []string
	// MaxStreams limits the streams per rendezvous circuit (0: unlimited).
	MaxStreams int
	// ClientAuthV3 lists authorized clients' x25519 public keys in base32
	// (52 characters); use with FlagV3Auth.
	ClientAuthV3 []string
	// PoW, when not nil, sets the service's proof-of-work defense
	// (PoWDefensesEnabled, PoWQueueRate, PoWQueueBurst). Tor accepts these
	// keywords since 0.4.9; older tors answer 512 Unrecognized keyword
	// argument (see IsUnrecognizedKeyword).
	PoW *OnionPoW
}

// OnionPoW is the proof-of-work defense of an ADD_ONION request.
type OnionPoW struct {
	// Enabled turns the defense on (PoWDefensesEnabled=1) or off (=0).
	Enabled bool
	// QueueRate and QueueBurst are the rate (per second) and burst of the
	// queue of introduction requests the service serves; 0 leaves tor's
	// default (250 and 2500 on tor 0.4.9) and sends nothing. Tor takes
	// 0 to 4294967295.
	QueueRate, QueueBurst int64
}

// IsUnrecognizedKeyword reports whether err is tor's refusal of an
// argument it does not know (512 ... Unrecognized keyword argument
// "keyword"), as an older tor answers ADD_ONION arguments added later.
func IsUnrecognizedKeyword(err error, keyword string) bool {
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != 512 {
		return false
	}
	return strings.Contains(ce.Text, "Unrecognized keyword argument") &&
		strings.Contains(strings.ToLower(ce.Text), `"`+strings.ToLower(keyword)+`"`)
}

// AddOnionReply is tor's answer to ADD_ONION.
type AddOnionReply struct {
	// ServiceID is the onion address without ".onion".
	ServiceID string
	// KeyType and KeyBlob are the new private key ("ED25519-V3" and its
	// base64), empty when the key was imported or FlagDiscardPK was given.
	KeyType, KeyBlob string
	// ClientAuthV3 are the client keys tor echoed.
	ClientAuthV3 []string
}

func (r *AddOnionRequest) line() (string, error) {
	kt, kb := r.KeyType, r.KeyBlob
	if kt == "" && kb == "" {
		kt, kb = KeyTypeNew, KeyBlobBest
	}
	if err := checkKeyword("ADD_ONION key type", kt); err != nil {
		return "", err
	}
	if err := CheckToken("ADD_ONION key blob", kb); err != nil {
		return "", err
	}
	if strings.Contains(kt, ":") {
		return "", fmt.Errorf("%w: ADD_ONION key type %q contains ':'", ErrInvalidArgument, kt)
	}
	var b strings.Builder
	b.WriteString("ADD_ONION ")
	b.WriteString(kt)
	b.WriteByte(':')
	b.WriteString(kb)
	if len(r.Flags) > 0 {
		for _, f := range r.Flags {
			if err := CheckToken("ADD_ONION flag", f); err != nil {
				return "", err
			}
			if strings.Contains(f, ",") {
				return "", fmt.Errorf("%w: ADD_ONION flag %q contains ','", ErrInvalidArgument, f)
			}
		}
		b.WriteString(" Flags=")
		b.WriteString(strings.Join(r.Flags, ","))
	}
	if r.MaxStreams < 0 || r.MaxStreams > 65535 {
		return "", fmt.Errorf("%w: MaxStreams %d out of range 0-65535", ErrInvalidArgument, r.MaxStreams)
	}
	if r.MaxStreams > 0 {
		b.WriteString(" MaxStreams=")
		b.WriteString(strconv.Itoa(r.MaxStreams))
	}
	if p := r.PoW; p != nil {
		if p.QueueRate < 0 || p.QueueRate > math.MaxUint32 || p.QueueBurst < 0 || p.QueueBurst > math.MaxUint32 {
			return "", fmt.Errorf("%w: PoW queue rate %d or burst %d out of range 0-%d", ErrInvalidArgument, p.QueueRate, p.QueueBurst, uint32(math.MaxUint32))
		}
		if p.Enabled {
			b.WriteString(" PoWDefensesEnabled=1")
		} else {
			b.WriteString(" PoWDefensesEnabled=0")
		}
		if p.QueueRate > 0 {
			b.WriteString(" PoWQueueRate=" + strconv.FormatInt(p.QueueRate, 10))
		}
		if p.QueueBurst > 0 {
			b.WriteString(" PoWQueueBurst=" + strconv.FormatInt(p.QueueBurst, 10))
		}
	}
	if len(r.Ports) == 0 {
		return "", fmt.Errorf("%w: ADD_ONION needs at least one port", ErrInvalidArgument)
	}
	for _, p := range r.Ports {
		if p.VirtPort < 1 || p.VirtPort > 65535 {
			return "", fmt.Errorf("%w: onion virtual port %d out of range 1-65535", ErrInvalidArgument, p.VirtPort)
		}
		b.WriteString(" Port=")
		b.WriteString(strconv.Itoa(p.VirtPort))
		if p.Target != "" {
			if err := CheckToken("ADD_ONION target", p.Target); err != nil {
				return "", err
			}
			b.WriteByte(',')
			b.WriteString(p.Target)
		}
	}
	for _, k := range r.ClientAuthV3 {
		if err := CheckToken("ClientAuthV3 key", k); err != nil {
			return "", err
		}
		b.WriteString(" ClientAuthV3=")
		b.WriteString(k)
	}
	return b.String(), nil
}

func parseAddOnion(reply *Reply) (*AddOnionReply, error) {
	res := &AddOnionReply{}
	for _, l := range reply.Lines {
		k, v, ok := strings.Cut(l.Text, "=")
		if !ok {
			continue
		}
		switch k {
		case "ServiceID":
			res.ServiceID = v
		case "PrivateKey":
			res.KeyType, res.KeyBlob, _ = strings.Cut(v, ":")
		case "ClientAuthV3":
			res.ClientAuthV3 = append(res.ClientAuthV3, v)
		}
	}
	if res.ServiceID == "" {
		return nil, fmt.Errorf("%w: ADD_ONION reply without ServiceID", ErrProtocol)
	}
	return res, nil
}

// AddOnion creates an onion service (ADD_ONION, control-spec §3.27). Every
// argument is checked before anything is written: a target or key with a
// space, CR, LF or NUL is refused.
//
// Unless FlagDetach is given, the service lives as long as this
// connection. If ctx ends after the command was written, AddOnion returns
// at once and the service tor creates is deleted (DEL_ONION) as soon as
// its reply arrives, so it does not leak.
func (c *Conn) AddOnion(ctx context.Context, req *AddOnionRequest) (*AddOnionReply, error) {
	line, err := req.line()
	if err != nil {
		return nil, err
	}
	r := newRequest("ADD_ONION", line, nil)
	r.late = func(rep *Reply) {
		if !rep.OK() {
			return
		}
		res, err := parseAddOnion(rep)
		if err != nil {
			return
		}
		c.log.Info("control: deleting onion service created by a cancelled ADD_ONION", "service", res.ServiceID)
		del := newRequest("DEL_ONION", "DEL_ONION "+res.ServiceID, nil)
		del.late = func(rep *Reply) {
			if !rep.OK() {
				c.log.Warn("control: DEL_ONION of cancelled ADD_ONION failed", "service", res.ServiceID, "err", replyError("DEL_ONION", rep))
			}
		}
		c.send(del)
	}
	reply, err := c.roundTrip(ctx, r)
	if err != nil {
		return nil, err
	}
	return parseAddOnion(reply)
}

// DelOnion deletes an onion service created by this connection or a
// detached one (DEL_ONION, control-spec §3.28). An unknown service gives an
// error matching ErrUnrecognizedEntity.
func (c *Conn) DelOnion(ctx context.Context, serviceID string) error {
	if err := CheckToken("onion service ID", serviceID); err != nil {
		return err
	}
	return c.requestOK(ctx, "DEL_ONION "+strings.TrimSuffix(serviceID, ".onion"))
}

// OnionClientAuth is a client-side credential for an onion service that
// requires client authorization.
type OnionClientAuth struct {
	// Address is the onion address without ".onion".
	Address string
	// KeyType is "x25519".
	KeyType string
	// PrivateKey is the base64 x25519 private key.
	PrivateKey string
	// ClientName is an optional nickname.
	ClientName string
	// Flags are the credential's flags, such as "Permanent" (stored in
	// ClientOnionAuthDir).
	Flags []string
}

// OnionClientAuthAdd registers a credential (ONION_CLIENT_AUTH_ADD,
// control-spec §3.30). It returns tor's status code: 250 added, 251
// replaced an existing one, 252 added and a cached descriptor could be
// decrypted.
func (c *Conn) OnionClientAuthAdd(ctx context.Context, a OnionClientAuth) (int, error) {
	kt := a.KeyType
	if kt == "" {
		kt = "x25519"
	}
	if err := CheckToken("onion address", a.Address); err != nil {
		return 0, err
	}
	if err := checkKeyword("key type", kt); err != nil {
		return 0, err
	}
	if err := CheckToken("private key", a.PrivateKey); err != nil {
		return 0, err
	}
	line := "ONION_CLIENT_AUTH_ADD " + strings.TrimSuffix(a.Address, ".onion") + " " + kt + ":" + a.PrivateKey
	if a.ClientName != "" {
		if err := CheckToken("client name", a.ClientName); err != nil {
			return 0, err
		}
		line += " ClientName=" + a.ClientName
	}
	if len(a.Flags) > 0 {
		for _, f := range a.Flags {
			if err := CheckToken("flag", f); err != nil {
				return 0, err
			}
		}
		line += " Flags=" + strings.Join(a.Flags, ",")
	}
	reply, err := c.roundTrip(ctx, newRequest("ONION_CLIENT_AUTH_ADD", line, nil))
	if err != nil {
		return 0, err
	}
	return reply.Code(), nil
}

// OnionClientAuthRemove removes the credential for an onion address
// (ONION_CLIENT_AUTH_REMOVE). It returns tor's status code: 250 removed,
// 251 there was none.
func (c *Conn) OnionClientAuthRemove(ctx context.Context, address string) (int, error) {
	if err := CheckToken("onion address", address); err != nil {
		return 0, err
	}
	reply, err := c.roundTrip(ctx, newRequest("ONION_CLIENT_AUTH_REMOVE", "ONION_CLIENT_AUTH_REMOVE "+strings.TrimSuffix(address, ".onion"), nil))
	if err != nil {
		return 0, err
	}
	return reply.Code(), nil
}

// OnionClientAuthView lists the registered credentials, for one address or
// (when address is empty) all of them (ONION_CLIENT_AUTH_VIEW).
func (c *Conn) OnionClientAuthView(ctx context.Context, address string) ([]OnionClientAuth, error) {
	line := "ONION_CLIENT_AUTH_VIEW"
	if address != "" {
		if err := CheckToken("onion address", address); err != nil {
			return nil, err
		}
		line += " " + strings.TrimSuffix(address, ".onion")
	}
	reply, err := c.roundTrip(ctx, newRequest("ONION_CLIENT_AUTH_VIEW", line, nil))
	if err != nil {
		return nil, err
	}
	var res []OnionClientAuth
	for _, l := range reply.Lines {
		rest, ok := strings.CutPrefix(l.Text, "CLIENT ")
		if !ok {
			continue
		}
		args, err := ParseArgs(rest)
		if err != nil {
			return res, fmt.Errorf("%w: ONION_CLIENT_AUTH_VIEW line: %w", ErrProtocol, err)
		}
		pos := args.Positional()
		if len(pos) < 2 {
			return res, fmt.Errorf("%w: short ONION_CLIENT_AUTH_VIEW line %q", ErrProtocol, trimForError(l.Text))
		}
		a := OnionClientAuth{Address: pos[0]}
		a.KeyType, a.PrivateKey, _ = strings.Cut(pos[1], ":")
		a.ClientName, _ = args.Get("ClientName")
		if f, ok := args.Get("Flags"); ok && f != "" {
			a.Flags = strings.Split(f, ",")
		}
		res = append(res, a)
	}
	return res, nil
}
