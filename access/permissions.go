package access

import (
	"github.com/sisbridge/sisbridge/subjects"
)

// Permissions are the subjects a role may publish and subscribe to.
type Permissions struct {
	Publish, Subscribe []string
}

// The JetStream streams behind the bus's streams and buckets.
var (
	eventsStream    = subjects.StreamEvents
	snapshotsStream = "OBJ_" + subjects.BucketSnapshots
	directoryStream = "KV_" + subjects.BucketDirectory
	routerStream    = "KV_" + subjects.BucketRouter
	usersStream     = "KV_" + subjects.BucketUsers
	seatsStream     = "KV_" + subjects.BucketSeats
	leaseStream     = "KV_" + subjects.BucketLease
	allStreams      = []string{eventsStream, snapshotsStream, directoryStream, routerStream, usersStream, seatsStream, leaseStream}
)

// Of returns the permissions of r (r.Check must pass).
func Of(r Role) Permissions {
	var p Permissions
	switch r {
	case Adapter:
		p = adapter()
	case Gateway:
		p = gateway()
	case Recorder:
		p = recorder()
	case Admin:
		p = admin()
	case Route:
		return Permissions{} // no client
	default:
		t, _ := r.Tenant()
		p = reader(t)
	}
	p.Publish = append(p.Publish, "$JS.API.INFO")
	p.Subscribe = append(p.Subscribe, r.Inbox()+".>")
	return p
}

func adapter() Permissions {
	p := Permissions{Publish: []string{subjects.AllEvents,
		"$KV." + subjects.BucketDirectory + ".>", "$KV." + subjects.BucketRouter + ".>",
		"$KV." + subjects.BucketLease + ".>",
		"$O." + subjects.BucketSnapshots + ".>", "$JS.API.STREAM.PURGE." + snapshotsStream,
		// made anew when their storage changes
		"$JS.API.STREAM.DELETE." + routerStream, "$JS.API.STREAM.DELETE." + leaseStream,
	}}
	for _, s := range allStreams {
		p.Publish = append(p.Publish, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s)
	}
	return p.with(readStreams(allStreams...))
}

func gateway() Permissions {
	p := Permissions{Publish: []string{"$KV." + subjects.BucketSeats + ".>"}, Subscribe: []string{subjects.AllLive}}
	return p.with(readStreams(allStreams...))
}

func recorder() Permissions {
	p := Permissions{Subscribe: []string{subjects.AllLive}}
	return p.with(readStreams(eventsStream, snapshotsStream, directoryStream, routerStream))
}

func admin() Permissions {
	p := Permissions{Publish: []string{"$KV." + subjects.BucketUsers + ".>",
		"$JS.API.STREAM.CREATE." + usersStream, "$JS.API.STREAM.UPDATE." + usersStream}}
	return p.with(readStreams(usersStream))
}

// reader may create, read and delete only its own consumer, filtered to
// its tenant's events, fetch its tenant's messages by subject, and follow
// its tenant's live subjects.
func reader(tenant string) Permissions {
	c := ReaderConsumer(tenant)
	api := "$JS.API.CONSUMER."
	return Permissions{
		Publish: []string{
			"$JS.API.STREAM.INFO." + eventsStream,
			api + "CREATE." + eventsStream + "." + c + "." + subjects.TenantEvents(tenant),
			api + "INFO." + eventsStream + "." + c, api + "DELETE." + eventsStream + "." + c,
			api + "MSG.NEXT." + eventsStream + "." + c,
			"$JS.ACK." + eventsStream + "." + c + ".>",
			"$JS.API.DIRECT.GET." + eventsStream + "." + subjects.TenantEvents(tenant),
		},
		Subscribe: []string{"sis.v1.live." + tenant + ".>"},
	}
}

// readStreams may read the streams: their info, direct gets, and
// consumers of its own (ordered consumers, KV watches, object reads).
func readStreams(streams ...string) Permissions {
	var p Permissions
	for _, s := range streams {
		p.Publish = append(p.Publish,
			"$JS.API.STREAM.INFO."+s, "$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.DIRECT.GET."+s, "$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.CONSUMER.CREATE."+s, "$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.INFO."+s+".*", "$JS.API.CONSUMER.DELETE."+s+".*",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".*", "$JS.FC."+s+".>", "$JS.ACK."+s+".>")
	}
	return p
}

func (p Permissions) with(q Permissions) Permissions {
	p.Publish = append(p.Publish, q.Publish...)
	p.Subscribe = append(p.Subscribe, q.Subscribe...)
	return p
}
