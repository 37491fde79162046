package sim

import (
	"fmt"
	"strings"

	"github.com/sisbridge/sisbridge/queue"
)

// newCall makes up a new session of media m arriving in group g. Every
// number and address is fictional: UK drama ranges (Ofcom), North American
// 555-01xx, example.com/.org/.net.
func (s *Sim) newCall(g *group, m queue.MediaType) *call {
	s.ids.call++
	ss := queue.Session{MediaType: m}
	if g.spec.preferred > 0 && s.rng.Float64() < g.spec.preferred {
		ss.PreferredAgentID = g.agents[s.rng.IntN(len(g.agents))].id
	}
	switch m {
	case queue.MediaVoice:
		ss.CustomerInformation = s.phone(g.uk)
		ss.DialedNumber = g.dialed[0]
		if s.rng.IntN(5) == 0 {
			ss.DialedNumber = g.dialed[1]
		}
		ss.IVRInformation = s.voiceIVR(g)
	case queue.MediaCallback:
		ss.CustomerInformation = s.phone(g.uk)
		ss.IVRInformation = []queue.IVRInfo{{Label: "Callback number", Data: ss.CustomerInformation}}
		if r := s.reason(g); r != "" {
			ss.IVRInformation = append(ss.IVRInformation, queue.IVRInfo{Label: "Reason", Data: r})
		}
	case queue.MediaWebCallBack:
		ss.CustomerInformation = s.phone(g.uk)
		page := s.people.pages[s.rng.IntN(len(s.people.pages))]
		ss.IVRInformation = []queue.IVRInfo{{Label: "Web page", Data: "https://www.example.com" + page}}
	case queue.MediaCampaign:
		ss.CustomerInformation = s.phone(g.uk)
		ss.IVRInformation = []queue.IVRInfo{{Label: "Campaign", Data: g.spec.campaign}}
	case queue.MediaSMS:
		ss.CustomerInformation = s.mobile(g.uk)
	case queue.MediaEmail, queue.MediaChat:
		ss.CustomerInformation = s.email()
	case queue.MediaOpenMedia:
		ss.CustomerInformation = s.social(g.uk)
	}
	return &call{id: fmt.Sprintf("%s-%08d", mediaPrefix(m), s.ids.call), session: ss}
}

// mediaPrefix starts the CallIDs of a media type.
func mediaPrefix(m queue.MediaType) string {
	switch m {
	case queue.MediaVoice:
		return "VOI"
	case queue.MediaChat:
		return "CHT"
	case queue.MediaCallback:
		return "CBK"
	case queue.MediaWebCallBack:
		return "WCB"
	case queue.MediaEmail:
		return "EML"
	case queue.MediaCampaign:
		return "CMP"
	case queue.MediaSMS:
		return "SMS"
	default:
		return "OPM"
	}
}

// phone returns a caller's number: a UK landline or mobile drama number, or
// a North American 555-01xx one.
func (s *Sim) phone(uk bool) string {
	if !uk {
		areas := s.people.usAreas
		return fmt.Sprintf("+1%d55501%02d", areas[s.rng.IntN(len(areas))], s.rng.IntN(100))
	}
	switch s.rng.IntN(4) {
	case 0:
		return fmt.Sprintf("+44207946%04d", s.rng.IntN(1000)) // London 020 7946 0xxx
	case 1:
		return fmt.Sprintf("+44161496%04d", s.rng.IntN(1000)) // Manchester 0161 496 0xxx
	case 2:
		return fmt.Sprintf("+44113496%04d", s.rng.IntN(1000)) // Leeds 0113 496 0xxx
	default:
		return s.mobile(true)
	}
}

// mobile returns an SMS sender's number.
func (s *Sim) mobile(uk bool) string {
	if uk {
		return fmt.Sprintf("+447700900%03d", s.rng.IntN(1000)) // 07700 900xxx
	}
	return s.phone(false)
}

// email returns a sender's address.
func (s *Sim) email() string {
	p := s.people
	first := strings.ToLower(p.first[s.rng.IntN(len(p.first))])
	last := strings.ToLower(p.last[s.rng.IntN(len(p.last))])
	domain := [...]string{"example.com", "example.org", "example.net"}[s.rng.IntN(3)]
	switch s.rng.IntN(3) {
	case 0:
		return first + "." + last + "@" + domain
	case 1:
		return first[:1] + last + "@" + domain
	default:
		return fmt.Sprintf("%s_%s%d@%s", first, last, 10+s.rng.IntN(90), domain)
	}
}

// social returns an open-media sender: a messaging number or a handle.
func (s *Sim) social(uk bool) string {
	p := s.people
	switch s.rng.IntN(3) {
	case 0:
		return "whatsapp:" + s.mobile(uk)
	case 1:
		return fmt.Sprintf("messenger:%s.%s.%d", strings.ToLower(p.first[s.rng.IntN(len(p.first))]),
			strings.ToLower(p.last[s.rng.IntN(len(p.last))]), 100+s.rng.IntN(900))
	default:
		return fmt.Sprintf("x:@%s%d", strings.ToLower(p.first[s.rng.IntN(len(p.first))]), 10+s.rng.IntN(9990))
	}
}

// voiceIVR returns what a voice caller entered in the IVR: a language, often
// an account number, a reason.
func (s *Sim) voiceIVR(g *group) []queue.IVRInfo {
	langs := s.people.usLangs
	if g.uk {
		langs = s.people.ukLangs
	}
	ivr := make([]queue.IVRInfo, 0, 3)
	ivr = append(ivr, queue.IVRInfo{Label: "Language", Data: langs[s.rng.IntN(len(langs))]})
	if s.rng.IntN(3) > 0 {
		ivr = append(ivr, queue.IVRInfo{Label: "Account number", Data: fmt.Sprintf("%08d", 10_000_000+s.rng.IntN(90_000_000))})
	}
	if r := s.reason(g); r != "" {
		ivr = append(ivr, queue.IVRInfo{Label: "Reason", Data: r})
	}
	return ivr
}

// reason returns what the caller chose in the IVR menu, "" for groups
// without one.
func (s *Sim) reason(g *group) string {
	if len(g.spec.reasons) == 0 {
		return ""
	}
	return g.spec.reasons[s.rng.IntN(len(g.spec.reasons))]
}
