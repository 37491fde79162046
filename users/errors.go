package users

import "errors"

// Errors of the user store. Each is wrapped with context; test with
// errors.Is. No error of this package ever carries a password or a password
// hash.
var (
	// ErrExists: Add was given a LogonID that already has a user.
	ErrExists = errors.New("user already exists")
	// ErrNotFound: SetPassword, Remove or Get was given a LogonID that has no
	// user.
	ErrNotFound = errors.New("user not found")
	// ErrInvalidCredentials: Authenticate refused the pair, because the user
	// is unknown, the password is wrong or the user lacks the
	// HostAdministrator role. The three share this one error so that what a
	// client is told does not reveal which; the wrapping message says which,
	// for the server's log. It maps to the protocol's InvalidUserFault.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrWeakPassword: a new password breaks the policy: fewer than
	// MinPasswordLength characters or more than MaxPasswordBytes bytes.
	ErrWeakPassword = errors.New("password does not meet the policy")
	// ErrInvalidLogonID: a LogonID is not 1 to MaxLogonIDLength printable
	// characters without spaces.
	ErrInvalidLogonID = errors.New("invalid logon ID")
	// ErrInvalidRole: a role name is not 1 to MaxRoleLength printable
	// characters without spaces or commas, or a user has more than MaxRoles.
	ErrInvalidRole = errors.New("invalid role")
	// ErrCorrupt: a stored user record does not decode, or its password hash
	// is not an argon2id PHC string this package reads. Authenticate returns
	// it (not ErrInvalidCredentials) because the credentials were never
	// judged; the caller refuses the login all the same.
	ErrCorrupt = errors.New("corrupt user record")
)
