// Package api is the wire format of drover's HTTPS API: the objects the
// control plane keeps (they are also what its state machine stores), the
// requests and responses of every endpoint, and their paths. Servers,
// agents and the CLI share it; it depends on nothing heavier than the
// artifacts and deploy packages.
package api
