package model

import "maps"

// Operations are the operations a resource allows, as in the OMA registry.
type Operations uint8

// Resource operations. OpNone is used by the Security object, whose
// resources only a Bootstrap-Server may touch.
const (
	OpNone Operations = iota
	OpR
	OpW
	OpRW
	OpE
)

func (o Operations) String() string {
	switch o {
	case OpNone:
		return "none"
	case OpR:
		return "R"
	case OpW:
		return "W"
	case OpRW:
		return "RW"
	case OpE:
		return "E"
	}
	return "Operations(?)"
}

// Readable reports whether a Read is allowed.
func (o Operations) Readable() bool { return o == OpR || o == OpRW }

// Writable reports whether a Write is allowed.
func (o Operations) Writable() bool { return o == OpW || o == OpRW }

// Executable reports whether an Execute is allowed.
func (o Operations) Executable() bool { return o == OpE }

// ResourceModel describes one resource of an object, as in the OMA registry.
type ResourceModel struct {
	ID         uint16
	Name       string
	Operations Operations
	Multiple   bool
	Mandatory  bool
	Type       Type
}

// ObjectModel describes an object, as in the OMA registry. Multiple reports
// whether the object may have several instances.
type ObjectModel struct {
	ID        uint16
	Name      string
	Version   string
	Multiple  bool
	Mandatory bool
	Resources map[uint16]ResourceModel
}

// Resource returns the model of resource id.
func (m ObjectModel) Resource(id uint16) (ResourceModel, bool) {
	r, ok := m.Resources[id]
	return r, ok
}

// Lookup returns the built-in model of an object. Unknown objects report
// false; callers then treat their resources as opaque.
func Lookup(objectID uint16) (ObjectModel, bool) {
	m, ok := builtin[objectID]
	if !ok {
		return ObjectModel{}, false
	}
	m.Resources = maps.Clone(m.Resources)
	return m, true
}

// resourceType returns the type the built-in model gives a resource, and
// false when the object or resource is unknown or has no value type.
func resourceType(objectID, resourceID uint16) (Type, bool) {
	r, ok := builtin[objectID].Resources[resourceID]
	if !ok || r.Type == TypeNone {
		return TypeNone, false
	}
	return r.Type, true
}

const (
	single   = false
	multiple = true
	optional = false
	required = true
)

func object(id uint16, name, version string, multi, mandatory bool, rs ...ResourceModel) ObjectModel {
	m := ObjectModel{ID: id, Name: name, Version: version, Multiple: multi, Mandatory: mandatory,
		Resources: make(map[uint16]ResourceModel, len(rs))}
	for _, r := range rs {
		if _, dup := m.Resources[r.ID]; dup {
			panic("model: duplicate resource in built-in table")
		}
		m.Resources[r.ID] = r
	}
	return m
}

func res(id uint16, name string, ops Operations, multi, mandatory bool, t Type) ResourceModel {
	return ResourceModel{ID: id, Name: name, Operations: ops, Multiple: multi, Mandatory: mandatory, Type: t}
}

// builtin holds the core objects, transcribed from the OMA lwm2m-registry
// (0.xml v1.2, 1.xml v1.2, 3.xml v1.2, 4.xml v1.3, 5.xml v1.1, 9.xml v1.1).
var builtin = map[uint16]ObjectModel{
	0: object(0, "LWM2M Security", "1.2", multiple, required,
		res(0, "LWM2M Server URI", OpNone, single, required, TypeString),
		res(1, "Bootstrap-Server", OpNone, single, required, TypeBoolean),
		res(2, "Security Mode", OpNone, single, required, TypeInteger),
		res(3, "Public Key or Identity", OpNone, single, required, TypeOpaque),
		res(4, "Server Public Key", OpNone, single, required, TypeOpaque),
		res(5, "Secret Key", OpNone, single, required, TypeOpaque),
		res(6, "SMS Security Mode", OpNone, single, optional, TypeInteger),
		res(7, "SMS Binding Key Parameters", OpNone, single, optional, TypeOpaque),
		res(8, "SMS Binding Secret Key(s)", OpNone, single, optional, TypeOpaque),
		res(9, "LwM2M Server SMS Number", OpNone, single, optional, TypeString),
		res(10, "Short Server ID", OpNone, single, optional, TypeInteger),
		res(11, "Client Hold Off Time", OpNone, single, optional, TypeInteger),
		res(12, "Bootstrap-Server Account Timeout", OpNone, single, optional, TypeInteger),
		res(13, "Matching Type", OpNone, single, optional, TypeUnsignedInteger),
		res(14, "SNI", OpNone, single, optional, TypeString),
		res(15, "Certificate Usage", OpNone, single, optional, TypeUnsignedInteger),
		res(16, "DTLS/TLS Ciphersuite", OpNone, multiple, optional, TypeUnsignedInteger),
		res(17, "OSCORE Security Mode", OpNone, single, optional, TypeObjectLink),
		res(18, "Groups To Use by Client", OpNone, multiple, optional, TypeUnsignedInteger),
		res(19, "Signature Algorithms Supported by Server", OpNone, multiple, optional, TypeUnsignedInteger),
		res(20, "Signature Algorithms To Use by Client", OpNone, multiple, optional, TypeUnsignedInteger),
		res(21, "Signature Algorithm Certs Supported by Server", OpNone, multiple, optional, TypeUnsignedInteger),
		res(22, "TLS 1.3 Features To Use by Client", OpNone, single, optional, TypeUnsignedInteger),
		res(23, "TLS Extensions Supported by Server", OpNone, single, optional, TypeUnsignedInteger),
		res(24, "TLS Extensions To Use by Client", OpNone, single, optional, TypeUnsignedInteger),
		res(25, "Secondary LwM2M Server URI", OpNone, multiple, optional, TypeString),
		res(26, "MQTT Server", OpNone, single, optional, TypeObjectLink),
		res(27, "LwM2M COSE Security", OpNone, multiple, optional, TypeObjectLink),
		res(28, "RDS Destination Port", OpNone, single, optional, TypeInteger),
		res(29, "RDS Source Port", OpNone, single, optional, TypeInteger),
		res(30, "RDS Application ID", OpNone, single, optional, TypeString),
	),
	1: object(1, "LwM2M Server", "1.2", multiple, required,
		res(0, "Short Server ID", OpR, single, required, TypeInteger),
		res(1, "Lifetime", OpRW, single, required, TypeUnsignedInteger),
		res(2, "Default Minimum Period", OpRW, single, optional, TypeInteger),
		res(3, "Default Maximum Period", OpRW, single, optional, TypeInteger),
		res(4, "Disable", OpE, single, optional, TypeNone),
		res(5, "Disable Timeout", OpRW, single, optional, TypeInteger),
		res(6, "Notification Storing When Disabled or Offline", OpRW, single, required, TypeBoolean),
		res(7, "Binding", OpRW, single, required, TypeString),
		res(8, "Registration Update Trigger", OpE, single, required, TypeNone),
		res(9, "Bootstrap-Request Trigger", OpE, single, optional, TypeNone),
		res(10, "APN Link", OpRW, single, optional, TypeObjectLink),
		res(11, "TLS-DTLS Alert Code", OpR, single, optional, TypeUnsignedInteger),
		res(12, "Last Bootstrapped", OpR, single, optional, TypeTime),
		res(13, "Registration Priority Order", OpR, single, optional, TypeUnsignedInteger),
		res(14, "Initial Registration Delay Timer", OpRW, single, optional, TypeUnsignedInteger),
		res(15, "Registration Failure Block", OpR, single, optional, TypeBoolean),
		res(16, "Bootstrap on Registration Failure", OpR, single, optional, TypeBoolean),
		res(17, "Communication Retry Count", OpRW, single, optional, TypeUnsignedInteger),
		res(18, "Communication Retry Timer", OpRW, single, optional, TypeUnsignedInteger),
		res(19, "Communication Sequence Delay Timer", OpRW, single, optional, TypeUnsignedInteger),
		res(20, "Communication Sequence Retry Count", OpRW, single, optional, TypeUnsignedInteger),
		res(21, "Trigger", OpRW, single, optional, TypeBoolean),
		res(22, "Preferred Transport", OpRW, single, optional, TypeString),
		res(23, "Mute Send", OpRW, single, optional, TypeBoolean),
		res(24, "Alternate APN Links", OpRW, multiple, optional, TypeObjectLink),
		res(25, "Supported Server Versions", OpRW, multiple, optional, TypeString),
		res(26, "Default Notification Mode", OpRW, single, optional, TypeInteger),
		res(27, "Profile ID Hash Algorithm", OpRW, single, optional, TypeUnsignedInteger),
	),
	3: object(3, "Device", "1.2", single, required,
		res(0, "Manufacturer", OpR, single, optional, TypeString),
		res(1, "Model Number", OpR, single, optional, TypeString),
		res(2, "Serial Number", OpR, single, optional, TypeString),
		res(3, "Firmware Version", OpR, single, optional, TypeString),
		res(4, "Reboot", OpE, single, required, TypeNone),
		res(5, "Factory Reset", OpE, single, optional, TypeNone),
		res(6, "Available Power Sources", OpR, multiple, optional, TypeInteger),
		res(7, "Power Source Voltage", OpR, multiple, optional, TypeInteger),
		res(8, "Power Source Current", OpR, multiple, optional, TypeInteger),
		res(9, "Battery Level", OpR, single, optional, TypeInteger),
		res(10, "Memory Free", OpR, single, optional, TypeInteger),
		res(11, "Error Code", OpR, multiple, required, TypeInteger),
		res(12, "Reset Error Code", OpE, single, optional, TypeNone),
		res(13, "Current Time", OpRW, single, optional, TypeTime),
		res(14, "UTC Offset", OpRW, single, optional, TypeString),
		res(15, "Timezone", OpRW, single, optional, TypeString),
		res(16, "Supported Binding and Modes", OpR, single, required, TypeString),
		res(17, "Device Type", OpR, single, optional, TypeString),
		res(18, "Hardware Version", OpR, single, optional, TypeString),
		res(19, "Software Version", OpR, single, optional, TypeString),
		res(20, "Battery Status", OpR, single, optional, TypeInteger),
		res(21, "Memory Total", OpR, single, optional, TypeInteger),
		res(22, "ExtDevInfo", OpR, multiple, optional, TypeObjectLink),
	),
	4: object(4, "Connectivity Monitoring", "1.3", single, optional,
		res(0, "Network Bearer", OpR, single, required, TypeInteger),
		res(1, "Available Network Bearer", OpR, multiple, required, TypeInteger),
		res(2, "Radio Signal Strength", OpR, single, required, TypeInteger),
		res(3, "Link Quality", OpR, single, optional, TypeInteger),
		res(4, "IP Addresses", OpR, multiple, required, TypeString),
		res(5, "Router IP Addresses", OpR, multiple, optional, TypeString),
		res(6, "Link Utilization", OpR, single, optional, TypeInteger),
		res(7, "APN", OpR, multiple, optional, TypeString),
		res(8, "Cell ID", OpR, single, optional, TypeInteger),
		res(9, "SMNC", OpR, single, optional, TypeInteger),
		res(10, "SMCC", OpR, single, optional, TypeInteger),
		res(11, "SignalSNR", OpR, single, optional, TypeInteger),
		res(12, "LAC", OpR, single, optional, TypeInteger),
		res(13, "Coverage Enhancement Level", OpR, single, optional, TypeInteger),
	),
	// Resource 4 of Object 5 is not defined in the registry.
	5: object(5, "Firmware Update", "1.1", single, optional,
		res(0, "Package", OpW, single, required, TypeOpaque),
		res(1, "Package URI", OpRW, single, required, TypeString),
		res(2, "Update", OpE, single, required, TypeNone),
		res(3, "State", OpR, single, required, TypeInteger),
		res(5, "Update Result", OpR, single, required, TypeInteger),
		res(6, "PkgName", OpR, single, optional, TypeString),
		res(7, "PkgVersion", OpR, single, optional, TypeString),
		res(8, "Firmware Update Protocol Support", OpR, multiple, optional, TypeInteger),
		res(9, "Firmware Update Delivery Method", OpR, single, required, TypeInteger),
		res(10, "Cancel", OpE, single, optional, TypeNone),
		res(11, "Severity", OpRW, single, optional, TypeInteger),
		res(12, "Last State Change Time", OpR, single, optional, TypeTime),
		res(13, "Maximum Defer Period", OpRW, single, optional, TypeUnsignedInteger),
	),
	9: object(9, "LWM2M Software Management", "1.1", multiple, optional,
		res(0, "PkgName", OpR, single, required, TypeString),
		res(1, "PkgVersion", OpR, single, required, TypeString),
		res(2, "Package", OpW, single, optional, TypeOpaque),
		res(3, "Package URI", OpW, single, optional, TypeString),
		res(4, "Install", OpE, single, required, TypeNone),
		res(5, "Checkpoint", OpR, single, optional, TypeObjectLink),
		res(6, "Uninstall", OpE, single, required, TypeNone),
		res(7, "Update State", OpR, single, required, TypeInteger),
		res(8, "Update Supported Objects", OpRW, single, optional, TypeBoolean),
		res(9, "Update Result", OpR, single, required, TypeInteger),
		res(10, "Activate", OpE, single, required, TypeNone),
		res(11, "Deactivate", OpE, single, required, TypeNone),
		res(12, "Activation State", OpR, single, required, TypeBoolean),
		res(13, "Package Settings", OpRW, single, optional, TypeObjectLink),
		res(14, "User Name", OpW, single, optional, TypeString),
		res(15, "Password", OpW, single, optional, TypeString),
		res(16, "Status Reason", OpR, single, optional, TypeString),
		res(17, "Software Component Link", OpR, multiple, optional, TypeObjectLink),
		res(18, "Software Component tree length", OpR, single, optional, TypeInteger),
		res(19, "Start", OpE, single, required, TypeNone),
		res(20, "Stop", OpE, single, required, TypeNone),
		res(21, "Operational State", OpR, single, required, TypeUnsignedInteger),
		res(22, "Purge", OpE, single, optional, TypeNone),
	),
}
