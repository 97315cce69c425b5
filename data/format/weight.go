package format

import (
	"encoding/json"
	"fmt"
)

// lossFields reads whether a message of role role is left out of the loss
// (Message.NoLoss) from its "weight" (OpenAI's chat fine-tuning format)
// and its "train" (Axolotl's message_field_training), which say the same
// thing in two ways: a message may have both only where they agree. A
// non-assistant message with "train": false says what ftune does anyway
// (only answers are learnt) and Axolotl's own examples write it on system
// and user turns, so it is accepted; "train": true there asks for what
// ftune does not do, and is refused rather than ignored.
func lossFields(obj map[string]any, role string) (noLoss bool, err error) {
	if noLoss, err = weightField(obj); err != nil {
		return false, err
	}
	train, given, err := trainField(obj)
	if err != nil || !given {
		return noLoss, err
	}
	if w := obj["weight"]; w != nil && noLoss == train {
		return false, fmt.Errorf("%w: \"train\" is %v and \"weight\" is %v: they disagree on whether the message is learnt (give one, or false with 0 and true with 1)", ErrBadValue, train, w)
	}
	if role != RoleAssistant {
		if train {
			return false, fmt.Errorf("%w: \"train\" is true on a %s message: ftune learns assistant messages only (data.train_on_inputs learns every token)", ErrBadValue, role)
		}
		return false, nil
	}
	return !train, nil
}

// givesLoss says whether a message says itself whether it is learnt.
func givesLoss(obj map[string]any) bool {
	_, weight := obj["weight"]
	_, train := obj["train"]
	return weight || train
}

// trainField reads a message's "train" (Axolotl's per-message training
// flag): true learns it, false leaves it out of the loss; given is false
// when it is absent or null. Anything but a boolean is refused, as a
// weight other than 0 or 1 is: the string "false" read as text would be
// learnt.
func trainField(obj map[string]any) (train, given bool, err error) {
	v, ok := obj["train"]
	if !ok || v == nil {
		return false, false, nil
	}
	switch x := v.(type) {
	case bool:
		return x, true, nil
	case string:
		return false, false, fmt.Errorf("%w: field \"train\" is the string %q: want true (learnt) or false (not learnt)", ErrBadValue, x)
	}
	return false, false, fmt.Errorf("%w: field \"train\": %v: want true (learnt) or false (not learnt)", ErrBadValue, v)
}

// weightField reads a message's "weight" (OpenAI's chat fine-tuning
// format): 0 leaves the message out of the loss, 1 learns it, as does no
// weight or null. Other values are refused rather than rounded: an answer
// is learnt or not.
func weightField(obj map[string]any) (noLoss bool, err error) {
	v, ok := obj["weight"]
	if !ok || v == nil {
		return false, nil
	}
	switch x := v.(type) {
	case float64:
		if x == 0 || x == 1 {
			return x == 0, nil
		}
	case json.Number:
		if f, err := x.Float64(); err == nil && (f == 0 || f == 1) {
			return f == 0, nil
		}
	case int64: // parquet
		if x == 0 || x == 1 {
			return x == 0, nil
		}
	case int32:
		if x == 0 || x == 1 {
			return x == 0, nil
		}
	}
	if s, ok := v.(string); ok {
		return false, fmt.Errorf("%w: field \"weight\" is the string %q: want the number 0 (not learnt) or 1 (learnt)", ErrBadValue, s)
	}
	return false, fmt.Errorf("%w: field \"weight\": %v: want 0 (not learnt) or 1 (learnt)", ErrBadValue, v)
}
