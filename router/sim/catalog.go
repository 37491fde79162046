package sim

import (
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// tenantSpec is a fictional company a simulated tenant is named after.
type tenantSpec struct {
	id, name string
	// uk: its numbers come from the UK drama ranges; else from the North
	// American 555-01xx range.
	uk bool
}

func tenantSpecs() []tenantSpec {
	return []tenantSpec{
		{"acme", "Acme Corporation", false},
		{"globex", "Globex Corporation", true},
		{"initech", "Initech", false},
		{"vandelay", "Vandelay Industries", true},
		{"tyrell", "Tyrell Corporation", false},
		{"wonka", "Wonka Industries", true},
		{"cyberdyne", "Cyberdyne Systems", false},
		{"oceanic", "Oceanic Airlines", false},
	}
}

// share is a media type's weight in a group's media mix.
type share struct {
	media  queue.MediaType
	weight int
}

// groupSpec is the kind of a simulated service group.
type groupSpec struct {
	key, name string
	mix       []share
	// perHour is the arrival rate at the busiest time of day, at Rate 1.
	perHour float64
	// aht is the mean handle time, wrap-up included.
	aht time.Duration
	// occupancy is the staffing target: agents on shift = offered load /
	// occupancy. Above 1 the group is understaffed and its queue grows until
	// callers give up; 0.85-0.92, as the groups have, gives the service
	// levels of an ordinary day (about 0.5-0.95 of sessions answered within
	// 20 s, TestServiceLevelsOfANormalDay).
	occupancy float64
	// opens and closes are the opening hours (local hours, opens < closes);
	// both 0: open around the clock.
	opens, closes int
	// overflowAfter is the maximum wait of Voice and Chat sessions before
	// they overflow to another group of the tenant; 0: no overflow.
	overflowAfter time.Duration
	// campaign names the outbound campaign whose Campaign sessions the
	// group queues; the campaign pauses now and then.
	campaign string
	// reasons are what callers choose in the IVR.
	reasons []string
	// preferred is the share of sessions that ask for a preferred agent.
	preferred float64
}

// groupSpecs lists the kinds of group, in the order tenants take them: with
// the default 3 tenants of 3 groups, each of the first nine appears once and
// every media type is present.
func groupSpecs() []groupSpec {
	return []groupSpec{
		{key: "sales", name: "Sales", perHour: 380, aht: 5 * time.Minute, occupancy: 0.92,
			mix:           []share{{queue.MediaVoice, 60}, {queue.MediaCallback, 15}, {queue.MediaWebCallBack, 15}, {queue.MediaChat, 10}},
			overflowAfter: 150 * time.Second, reasons: []string{"New order", "Pricing", "Upgrade", "Order status"}, preferred: 0.08},
		{key: "support", name: "Customer Support", perHour: 460, aht: 6 * time.Minute, occupancy: 0.9,
			mix:     []share{{queue.MediaVoice, 55}, {queue.MediaChat, 20}, {queue.MediaEmail, 15}, {queue.MediaCallback, 10}},
			reasons: []string{"Technical issue", "Password reset", "Delivery", "Complaint"}, preferred: 0.1},
		{key: "billing", name: "Billing", perHour: 300, aht: 5 * time.Minute, occupancy: 0.92, opens: 8, closes: 18,
			mix:     []share{{queue.MediaVoice, 70}, {queue.MediaEmail, 20}, {queue.MediaSMS, 10}},
			reasons: []string{"Invoice query", "Payment", "Direct debit", "Refund"}, preferred: 0.05},
		{key: "outbound", name: "Outbound Renewals", perHour: 340, aht: 3 * time.Minute, occupancy: 0.9,
			mix:      []share{{queue.MediaCampaign, 100}},
			campaign: "Spring renewals", preferred: 0},
		{key: "webchat", name: "Web Chat", perHour: 320, aht: 7 * time.Minute, occupancy: 0.9, opens: 7, closes: 22,
			mix:       []share{{queue.MediaChat, 70}, {queue.MediaOpenMedia, 20}, {queue.MediaSMS, 10}},
			preferred: 0.05},
		{key: "email", name: "Email Desk", perHour: 140, aht: 9 * time.Minute, occupancy: 0.85,
			mix:       []share{{queue.MediaEmail, 85}, {queue.MediaOpenMedia, 15}},
			preferred: 0.15},
		{key: "helpdesk", name: "Technical Helpdesk", perHour: 340, aht: 8 * time.Minute, occupancy: 0.92,
			mix:           []share{{queue.MediaVoice, 60}, {queue.MediaCallback, 15}, {queue.MediaWebCallBack, 10}, {queue.MediaChat, 15}},
			overflowAfter: 180 * time.Second, reasons: []string{"No connection", "Slow service", "Router setup", "Outage"}, preferred: 0.1},
		{key: "care", name: "Customer Care", perHour: 250, aht: 6 * time.Minute, occupancy: 0.9,
			mix:     []share{{queue.MediaVoice, 75}, {queue.MediaCallback, 15}, {queue.MediaEmail, 10}},
			reasons: []string{"Change of address", "Cancel contract", "Complaint", "Moving house"}, preferred: 0.1},
		{key: "messaging", name: "Messaging", perHour: 230, aht: 5 * time.Minute, occupancy: 0.88,
			mix:       []share{{queue.MediaSMS, 50}, {queue.MediaOpenMedia, 30}, {queue.MediaChat, 20}},
			preferred: 0.05},
		{key: "premium", name: "Premium Line", perHour: 100, aht: 7 * time.Minute, occupancy: 0.85,
			mix:     []share{{queue.MediaVoice, 85}, {queue.MediaCallback, 15}},
			reasons: []string{"Account review", "New order", "Complaint"}, preferred: 0.4},
	}
}

// dailyProfile is the arrival rate at a local hour of day, relative to the
// busiest time: quiet at night, busy mid-morning and mid-afternoon, a dip at
// lunch. Values between hours are interpolated.
func dailyProfile(t time.Time) float64 {
	p := [24]float64{
		0.2, 0.17, 0.15, 0.15, 0.15, 0.18, 0.3, 0.5, 0.8, 0.95, 1, 0.95,
		0.75, 0.8, 0.9, 0.95, 0.85, 0.7, 0.55, 0.45, 0.4, 0.35, 0.3, 0.25,
	}
	h, m, s := t.Clock()
	x := float64(h) + float64(m)/60 + float64(s)/3600
	i := int(x)
	f := x - float64(i)
	return p[i]*(1-f) + p[(i+1)%24]*f
}

// Fictional personal data.
type people struct {
	first, last []string
	usAreas     []int
	ukLangs     []string
	usLangs     []string
	pages       []string
}

func newPeople() *people {
	return &people{
		first: []string{"Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Jamie", "Robin", "Chris", "Pat",
			"Avery", "Riley", "Charlie", "Drew", "Emery", "Frankie", "Harper", "Jesse", "Kai", "Logan"},
		last: []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Wright",
			"Garcia", "Miller", "Nguyen", "Khan", "Murphy", "Clarke", "Lopez", "Walker", "Hughes", "Novak"},
		usAreas: []int{202, 212, 303, 312, 415, 512, 617, 702},
		ukLangs: []string{"English", "English", "English", "English", "English", "English", "Welsh", "Polish", "French", "Spanish"},
		usLangs: []string{"English", "English", "English", "English", "English", "English", "Spanish", "Spanish", "French", "Vietnamese"},
		pages:   []string{"/pricing", "/contact", "/support", "/account", "/checkout", "/products"},
	}
}
