package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rawEntry encodes a command whose body is given as raw JSON, as a buggy or
// foreign writer could.
func rawEntry(t *testing.T, typ CmdType, body string) []byte {
	t.Helper()
	c := &Command{Type: typ, Time: t0, Actor: "tester", Body: json.RawMessage(body)}
	data, err := c.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return data
}

// TestApplyPanicsOnUndecodableEntry checks that an entry the state machine
// cannot decode stops it (a corrupt or incompatible log must not let this
// server's state silently diverge), that the panic names the entry, and
// that the store is left unchanged and usable.
func TestApplyPanicsOnUndecodableEntry(t *testing.T) {
	envelope := string(rawEntry(t, CmdEnroll, `{}`)[1:])
	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"type byte only", []byte{byte(CmdEnroll)}},
		{"envelope not JSON", append([]byte{byte(CmdEnroll)}, "not json"...)},
		{"envelope truncated", []byte(string(rawEntry(t, CmdEnroll, `{}`))[:10])},
		{"type 0", append([]byte{0}, envelope...)},
		{"unknown type", append([]byte{200}, envelope...)},
		{"enroll body is a string", rawEntry(t, CmdEnroll, `"h1"`)},
		{"token body is an array", rawEntry(t, CmdTokenCreate, `[1,2]`)},
		{"token uses is a string", rawEntry(t, CmdTokenCreate, `{"id":"t1","uses":"three"}`)},
		{"step expect index is negative", rawEntry(t, CmdRolloutStep, `{"rollout":"r-1","expect_index":-1}`)},
		{"report state is a number", rawEntry(t, CmdAgentReport, `{"host":"h1","state":5}`)},
		{"rollout waves are a string", rawEntry(t, CmdRolloutCreate, `{"release":"web@1","plan":{"waves":"1,100%"}}`)},
		{"payload list is not base64", rawEntry(t, CmdPayloadRegister, `{"sha256":"x","list":"not base64!"}`)},
		{"policy serial is negative", rawEntry(t, CmdTrustSet, `{"policy":{"app":"web","serial":-1}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addHosts(nil, "h1")
			before := objects(t, h.store)
			index := h.index + 1
			func() {
				defer func() {
					r := recover()
					if r == nil {
						t.Fatalf("Apply(%d, %q) did not panic", index, tt.data)
					}
					if want := fmt.Sprintf("raft entry %d", index); !strings.Contains(fmt.Sprint(r), want) {
						t.Errorf("panic: got %q; want it to name %q", r, want)
					}
				}()
				h.store.Apply(index, tt.data)
			}()
			if after := objects(t, h.store); !bytes.Equal(before, after) {
				t.Errorf("the entry changed the state:\n%s", diffLines(before, after))
			}
			// The write transaction was released: the store still applies entries.
			h.index = index
			h.addHosts(nil, "h2")
		})
	}
}

// TestCommandCheck checks that Check refuses what Apply would panic on,
// without panicking itself, and accepts every well-formed command.
func TestCommandCheck(t *testing.T) {
	valid := map[CmdType]any{
		CmdTokenCreate:     tokenBody("t1", 1, nil, t0),
		CmdEnroll:          enrollBody("t1", "h1"),
		CmdTrustSet:        rotationBody("web", 2, 1, []signer{newSigner(t)}, newSigner(t)),
		CmdPayloadRegister: payloadBody("web", "1.0.0", 1000, "s1"),
		CmdReleaseCreate:   ReleaseCreate{Manifest: []byte("{}")},
		CmdRolloutCreate:   RolloutCreate{Release: "web@1", Plan: plan(t, "1,100%", 0)},
		CmdRolloutStep:     RolloutStep{Rollout: "r-1", Start: []string{"h1"}},
		CmdAgentReport:     reportBody("h1", "r-1", "downloading", ""),
		CmdInventory:       Inventory{Host: "h1", System: []byte(`{}`)},
		CmdRolloutControl:  RolloutControl{Rollout: "r-1", Action: "pause"},
	}
	type check struct {
		name    string
		cmd     *Command
		wantErr string // "" means valid
	}
	var tests []check
	for typ, body := range valid {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, check{"valid " + typ.String(), &Command{Type: typ, Body: b}, ""})
	}
	tests = append(tests,
		check{"empty object body", &Command{Type: CmdEnroll, Body: json.RawMessage(`{}`)}, ""},
		check{"type 0", &Command{Type: 0, Body: json.RawMessage(`{}`)}, "unknown command type 0"},
		check{"unknown type", &Command{Type: 200, Body: json.RawMessage(`{}`)}, "unknown command type 200"},
		check{"no body", &Command{Type: CmdEnroll}, "bad enroll body"},
		check{"body not JSON", &Command{Type: CmdEnroll, Body: json.RawMessage(`{"host":`)}, "bad enroll body"},
		check{"string body", &Command{Type: CmdEnroll, Body: json.RawMessage(`"h1"`)}, "bad enroll body"},
		check{"array body", &Command{Type: CmdTokenCreate, Body: json.RawMessage(`[1,2]`)}, "bad token-create body"},
		check{"field of the wrong type", &Command{Type: CmdTokenCreate, Body: json.RawMessage(`{"uses":"three"}`)}, "bad token-create body"},
		check{"bad time", &Command{Type: CmdTokenCreate, Body: json.RawMessage(`{"expires_at":"tomorrow"}`)}, "bad token-create body"},
		check{"negative index", &Command{Type: CmdRolloutStep, Body: json.RawMessage(`{"expect_index":-1}`)}, "bad rollout-step body"},
		check{"state of the wrong type", &Command{Type: CmdAgentReport, Body: json.RawMessage(`{"state":5}`)}, "bad agent-report body"},
		check{"empty trust-set body", &Command{Type: CmdTrustSet, Body: json.RawMessage(`{}`)}, ""},
		check{"empty payload-register body", &Command{Type: CmdPayloadRegister, Body: json.RawMessage(`{}`)}, ""},
		check{"payload list of the wrong type", &Command{Type: CmdPayloadRegister, Body: json.RawMessage(`{"list":5}`)}, "bad payload-register body"},
		check{"payload size of the wrong type", &Command{Type: CmdPayloadRegister, Body: json.RawMessage(`{"size":"1 KB"}`)}, "bad payload-register body"},
		check{"policy serial of the wrong type", &Command{Type: CmdTrustSet, Body: json.RawMessage(`{"policy":{"serial":"2"}}`)}, "bad trust-set body"},
		check{"policy signatures of the wrong type", &Command{Type: CmdTrustSet, Body: json.RawMessage(`{"policy":{"signatures":"abc"}}`)}, "bad trust-set body"},
		check{"waves of the wrong type", &Command{Type: CmdRolloutCreate, Body: json.RawMessage(`{"plan":{"waves":"1"}}`)}, "bad rollout-create body"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cmd.Check()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Check: got %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Check: got %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestCheckedCommandsApply checks the promise Check makes: a command it
// accepts does not panic Apply.
func TestCheckedCommandsApply(t *testing.T) {
	for typ := CmdType(1); typ < 255; typ++ {
		cmd := &Command{Type: typ, Time: t0, Body: json.RawMessage(`{}`)}
		if cmd.Check() != nil {
			continue
		}
		t.Run(typ.String(), func(t *testing.T) {
			data, err := cmd.Encode()
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Apply of a checked %s command panicked: %v", typ, r)
				}
			}()
			NewStore().Apply(1, data)
		})
	}
}

func TestCommandEncodeDecode(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	cmd, err := NewCommand(CmdAgentReport, "agent@h1", "key-1", reportBody("h1", "r-1", "staged", "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Time = at
	data, err := cmd.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != byte(CmdAgentReport) {
		t.Errorf("type byte: got %d; want %d", data[0], CmdAgentReport)
	}
	got, err := DecodeCommand(data)
	if err != nil {
		t.Fatalf("DecodeCommand: %v", err)
	}
	if got.Type != cmd.Type || got.Key != cmd.Key || got.Actor != cmd.Actor || !got.Time.Equal(at) || !bytes.Equal(got.Body, cmd.Body) {
		t.Errorf("decoded %+v; want %+v", got, cmd)
	}
	var body AgentReport
	if err := json.Unmarshal(got.Body, &body); err != nil || !reflect.DeepEqual(body, reportBody("h1", "r-1", "staged", "1.0.0")) {
		t.Errorf("body: got %+v (%v); want the report", body, err)
	}

	if _, err := NewCommand(CmdEnroll, "x", "", func() {}); err == nil {
		t.Errorf("NewCommand with a body that is not JSON: got no error; want one")
	}
	for _, bad := range [][]byte{nil, {byte(CmdEnroll)}, append([]byte{byte(CmdEnroll)}, "{"...)} {
		if _, err := DecodeCommand(bad); err == nil {
			t.Errorf("DecodeCommand(%q): got no error; want one", bad)
		}
	}
}

func TestCmdTypeString(t *testing.T) {
	tests := []struct {
		typ  CmdType
		want string
	}{
		{CmdTokenCreate, "token-create"},
		{CmdEnroll, "enroll"},
		{CmdTrustSet, "trust-set"},
		{CmdPayloadRegister, "payload-register"},
		{CmdReleaseCreate, "release-create"},
		{CmdRolloutStep, "rollout-step"},
		{CmdRolloutControl, "rollout-control"},
		{0, "cmd-0"},
		{200, "cmd-200"},
	}
	for _, tt := range tests {
		if got := tt.typ.String(); got != tt.want {
			t.Errorf("CmdType(%d).String() = %q; want %q", uint8(tt.typ), got, tt.want)
		}
	}
}
