package protocol

import "fmt"

// FaultType names a fault of the protocol.
type FaultType string

// The faults.
const (
	InvalidUserFault         FaultType = "InvalidUserFault"
	RouterDisconnectedFault  FaultType = "RouterDisconnectedFault"
	NoLicenseFault           FaultType = "NoLicenseFault"
	InvalidServiceGroupFault FaultType = "InvalidServiceGroupFault"
	InvalidRequestFault      FaultType = "InvalidRequestFault"
)

// Fault is a typed protocol fault; it is an error, and errors.As finds it.
type Fault struct {
	// Type names the fault.
	Type FaultType `json:"type" msgpack:"type"`
	// Message says what happened, for humans.
	Message string `json:"message" msgpack:"message"`
}

// Error returns "Type: Message".
func (f *Fault) Error() string { return string(f.Type) + ": " + f.Message }

// Faultf returns a fault of type t with a formatted message.
func Faultf(t FaultType, format string, args ...any) *Fault {
	return &Fault{Type: t, Message: fmt.Sprintf(format, args...)}
}
