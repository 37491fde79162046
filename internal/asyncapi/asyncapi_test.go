package asyncapi_test

import (
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/asyncapi"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// TestDocumentTakesWhatTheEncodersMake: every kind of message the
// gateway's encoders make conforms; messages that break the protocol do
// not.
func TestDocumentTakesWhatTheEncodersMake(t *testing.T) {
	s, err := asyncapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	id := int64(3)
	yes := true
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	avg, sl := 12.5, 0.8
	updates := []protocol.Update{
		{Type: queue.UpdateAdd, Session: queue.Session{ServiceGroupID: "g", CallID: "c1", QueuePosition: 1, MediaType: queue.MediaVoice, TimeEnteredQueue: at,
			IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "en"}}}},
		{Type: queue.UpdateRemove, Cause: queue.CauseDisconnect, Session: queue.Session{ServiceGroupID: "g", CallID: "c2", MediaType: queue.MediaSMS, TimeEnteredQueue: at}},
	}
	good := map[string][]byte{
		"SessionsUpdated":     protocol.AppendSessionsUpdated(protocol.JSON, nil, "g", 7, updates),
		"InitialDataComplete": protocol.AppendInitialDataComplete(protocol.JSON, nil, "g", 0),
		"KeepAlive":           protocol.AppendKeepAlive(protocol.JSON, nil, map[string]uint64{"g": 7}),
		"KeepAlive, none":     protocol.AppendKeepAlive(protocol.JSON, nil, nil),
		"RouterDisconnected":  protocol.AppendEvent(protocol.JSON, nil, protocol.EventRouterDisconnected),
		"ServiceGroupRemoved": protocol.AppendServiceGroupRemoved(protocol.JSON, nil, "g"),
		"QueueStatistics": protocol.AppendQueueStatistics(protocol.JSON, nil, "g", 7, &protocol.Statistics{At: at, Waiting: 1,
			WaitingByMedia: map[string]int{"Voice": 1}, OldestEnteredQueue: &at, Window: 900, Entered: 2, Removed: map[string]int{"Disconnect": 1},
			AverageWaitAllocated: &avg, ServiceLevelThreshold: 20, ServiceLevel: &sl}),
		"reply":               protocol.AppendReply(protocol.JSON, nil, &id, &protocol.Result{Succeeded: &yes, ServiceGroupIDs: []string{"a", "b"}}),
		"empty reply":         protocol.AppendReply(protocol.JSON, nil, &id, nil),
		"fault":               protocol.AppendFault(protocol.JSON, nil, &id, protocol.Faultf(protocol.InvalidRequestFault, "no")),
		"fault without an id": protocol.AppendFault(protocol.JSON, nil, nil, protocol.Faultf(protocol.InvalidRequestFault, "malformed")),
	}
	for name, data := range good {
		if err := s.CheckServer(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]string{
		"no Seq":               `{"event":"SessionsUpdated","ServiceGroupID":"g","SessionUpdates":[]}`,
		"unknown media":        `{"event":"SessionsUpdated","ServiceGroupID":"g","Seq":1,"SessionUpdates":[{"UpdateType":"Add","RemoveCause":"None","Session":{"ServiceGroupID":"g","CallID":"c","QueuePosition":1,"PreferredAgentID":0,"MediaType":"Fax","TimeEnteredQueue":"2026-11-25T09:00:00.000Z","CustomerInformation":"","DialedNumber":"","IVRInformation":[]}}]}`,
		"KeepAlive, no Seqs":   `{"event":"KeepAlive"}`,
		"unknown event":        `{"event":"Nope"}`,
		"unknown fault":        `{"id":1,"fault":{"type":"OopsFault","message":"x"}}`,
		"malformed group":      `{"event":"ServiceGroupRemoved","ServiceGroupID":"a b"}`,
		"service level over 1": `{"event":"QueueStatistics","ServiceGroupID":"g","Seq":1,"At":"2026-11-25T09:00:00Z","Waiting":0,"WaitingByMedia":{},"OldestEnteredQueue":null,"Window":900,"Entered":0,"Removed":{},"AverageWaitAllocated":null,"LongestWaitAllocated":null,"ServiceLevelThreshold":20,"ServiceLevel":1.5,"EstimatedWait":null}`,
	}
	for name, data := range bad {
		if err := s.CheckServer([]byte(data)); err == nil {
			t.Errorf("%s: conforms", name)
		}
	}
	for name, c := range map[string]struct {
		data string
		ok   bool
	}{
		"Initialize":           {`{"op":"Initialize","id":1,"SendQueuePositionUpdates":true,"MaxEventsPerSecond":5}`, true},
		"Subscribe by name":    {`{"op":"Subscribe","id":2,"TenantID":"acme","ServiceGroupName":"Sales","Statistics":true}`, true},
		"tenant-wide":          {`{"op":"Subscribe","id":3,"TenantID":"acme","AllGroups":true,"MediaTypes":["Voice"]}`, true},
		"Unsubscribe a tenant": {`{"op":"Unsubscribe","id":4,"TenantID":"acme","AllGroups":true}`, true},
		"Heartbeat":            {`{"op":"Heartbeat","id":5}`, true},
		"no positions answer":  {`{"op":"Initialize","id":1}`, false},
		"cap past 100":         {`{"op":"Initialize","id":1,"SendQueuePositionUpdates":true,"MaxEventsPerSecond":101}`, false},
		"Subscribe to nothing": {`{"op":"Subscribe","id":2}`, false},
		"empty MediaTypes":     {`{"op":"Subscribe","id":2,"ServiceGroupID":"g","MediaTypes":[]}`, false},
		"unknown op":           {`{"op":"Frobnicate","id":2}`, false},
	} {
		if err := s.CheckClient([]byte(c.data)); (err == nil) != c.ok {
			t.Errorf("%s: conforms %v, want %v (%v)", name, err == nil, c.ok, err)
		}
	}
}
