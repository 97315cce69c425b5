package track

import (
	"sort"
	"time"
)

// Field numbers of the messages written (from TensorBoard's .proto files).
const (
	// Event
	evWallTime    = 1 // double
	evStep        = 2 // int64
	evFileVersion = 3 // string
	evSummary     = 5 // Summary
	evSessionLog  = 7 // SessionLog

	// Summary / Summary.Value
	sumValue       = 1 // repeated Value
	valTag         = 1 // string
	valSimpleValue = 2 // float, in the value oneof
	valTensor      = 8 // TensorProto, in the value oneof
	valMetadata    = 9 // SummaryMetadata

	// SummaryMetadata / PluginData
	mdPluginData    = 1
	mdDataClass     = 4
	pluginName      = 1
	pluginContent   = 2
	dataClassTensor = 2

	// TensorProto / TensorShapeProto
	tensorDType    = 1
	tensorShape    = 2
	tensorString   = 8
	shapeDim       = 2
	dimSize        = 1
	dtString       = 7 // DT_STRING
	sessionStart   = 1 // SessionLog.START
	sessionLogStat = 1 // SessionLog.status

	// hparams plugin_data.proto
	hpVersion      = 1
	hpSessionStart = 3
	hpSessionEnd   = 4
	ssiHParams     = 1 // map<string, google.protobuf.Value>
	ssiStartTime   = 5
	seiStatus      = 1
	seiEndTime     = 2

	// google.protobuf.Value kinds
	pvNumber = 2
	pvString = 3
	pvBool   = 4
)

// hparams Status values (api.proto).
const (
	hpStatusUnknown = 0
	hpStatusSuccess = 1
	hpStatusFailure = 2
)

// secs is t in seconds since the epoch; whole seconds and the fraction are
// converted apart so that exact times stay exact.
func secs(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

func eventHead(t time.Time, step int) pb {
	return pb(nil).double(evWallTime, secs(t)).varint(evStep, uint64(int64(step)))
}

func encodeFileVersion(t time.Time) []byte {
	return pb(nil).double(evWallTime, secs(t)).str(evFileVersion, "brain.Event:2")
}

// encodeScalars is one event holding a simple_value per metric, in tag
// order so files are reproducible. TensorBoard's scalar plugin reads
// simple_value without plugin metadata.
func encodeScalars(t time.Time, step int, m map[string]float64) []byte {
	var sum pb
	for _, k := range sortedKeys(m) {
		v := pb(nil).str(valTag, k).float(valSimpleValue, float32(m[k]))
		sum = sum.bytes(sumValue, v)
	}
	return eventHead(t, step).bytes(evSummary, sum)
}

func pluginMetadata(name string, content []byte, dataClass int) pb {
	pd := pb(nil).str(pluginName, name)
	if len(content) > 0 {
		pd = pd.bytes(pluginContent, content)
	}
	md := pb(nil).bytes(mdPluginData, pd)
	if dataClass != 0 {
		md = md.varint(mdDataClass, uint64(dataClass))
	}
	return md
}

// encodeText is a text-plugin summary: a rank-1 DT_STRING tensor of one
// element (what torch.utils.tensorboard's add_text writes; TensorBoard
// renders it as Markdown).
func encodeText(t time.Time, step int, tag, text string) []byte {
	dim := pb(nil).varint(dimSize, 1)
	shape := pb(nil).bytes(shapeDim, dim)
	tensor := pb(nil).varint(tensorDType, dtString).bytes(tensorShape, shape).str(tensorString, text)
	v := pb(nil).str(valTag, tag).bytes(valMetadata, pluginMetadata("text", nil, dataClassTensor)).bytes(valTensor, tensor)
	return eventHead(t, step).bytes(evSummary, pb(nil).bytes(sumValue, v))
}

// hparamsEvent wraps HParamsPluginData content in the summary the hparams
// plugin looks for under tag.
func hparamsEvent(t time.Time, tag string, content []byte) []byte {
	v := pb(nil).str(valTag, tag).bytes(valMetadata, pluginMetadata("hparams", content, 0))
	return eventHead(t, 0).bytes(evSummary, pb(nil).bytes(sumValue, v))
}

// encodeHParamsStart records the run's hyper-parameters (numbers, strings
// and booleans) as an hparams session start, so TensorBoard's HPARAMS tab
// lists the run with its settings beside its final metrics.
func encodeHParamsStart(t time.Time, hp map[string]any) []byte {
	var ssi pb
	for _, k := range sortedKeys(hp) {
		var val pb
		switch x := hp[k].(type) {
		case bool:
			b := uint64(0)
			if x {
				b = 1
			}
			val = val.varint(pvBool, b)
		case float64:
			val = val.double(pvNumber, x)
		case int:
			val = val.double(pvNumber, float64(x))
		case string:
			val = val.str(pvString, x)
		default:
			continue
		}
		entry := pb(nil).str(1, k).bytes(2, val)
		ssi = ssi.bytes(ssiHParams, entry)
	}
	ssi = ssi.double(ssiStartTime, secs(t))
	content := pb(nil).varint(hpVersion, 0).bytes(hpSessionStart, ssi)
	return hparamsEvent(t, "_hparams_/session_start_info", content)
}

func encodeHParamsEnd(t time.Time, status int) []byte {
	sei := pb(nil).varint(seiStatus, uint64(status)).double(seiEndTime, secs(t))
	content := pb(nil).varint(hpVersion, 0).bytes(hpSessionEnd, sei)
	return hparamsEvent(t, "_hparams_/session_end_info", content)
}

// encodeSessionStart marks a restart at step: TensorBoard then drops the
// events of earlier files with larger steps (those the crash orphaned).
func encodeSessionStart(t time.Time, step int) []byte {
	return eventHead(t, step).bytes(evSessionLog, pb(nil).varint(sessionLogStat, sessionStart))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
