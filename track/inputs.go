package track

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// InputChanges are the differences between a run's recorded inputs
// (manifest.json) and the files now at the same paths, one line per file:
// "changed F", "added F", "removed F" (F relative to the inputs' folder).
type InputChanges struct {
	BaseModel []string
	Data      []string
	// SinceRead are the data files that changed between the run reading
	// them and hashing them (CheckInputsRead): the manifest records them
	// as read.
	SinceRead []string
}

// CheckInputs hashes the base model and data files again (as SetInputs
// did when the run started) and returns what changed; a resumed run calls
// it to say that it continues on edited data. The manifest then records
// the current inputs, so versions written from now on carry the hashes of
// what they were trained on.
func (r *Run) CheckInputs(baseModel, data []string) (InputChanges, error) {
	return r.CheckInputsRead(baseModel, data, nil)
}

// CheckInputsRead is CheckInputs told what the resumed run read of its
// data files, as SetInputsRead is: those are compared and recorded as
// read, and the ones written to since are listed in SinceRead.
func (r *Run) CheckInputsRead(baseModel, data []string, read []FileHash) (InputChanges, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ch InputChanges
	base, err := r.hashes.hashPaths(baseModel, "")
	if err != nil {
		return ch, fmt.Errorf("track: base model: %w", err)
	}
	d, since, err := r.hashData(data, read)
	if err != nil {
		return ch, err
	}
	ch.SinceRead = since
	// Nothing recorded (a run started before inputs were hashed) is no
	// evidence of a change.
	if len(r.manifest.BaseModel) > 0 {
		ch.BaseModel = diffFiles(r.manifest.BaseModel, base, baseModel)
	}
	if len(r.manifest.Data) > 0 {
		ch.Data = diffFiles(r.manifest.Data, d, data)
	}
	if len(ch.BaseModel)+len(ch.Data) == 0 && len(r.manifest.BaseModel) > 0 && len(r.manifest.Data) > 0 {
		return ch, nil
	}
	r.manifest.BaseModel, r.manifest.Data = base, d
	return ch, r.writeJSON(ManifestFile, r.manifest)
}

// diffFiles compares two hash lists by path relative to the input roots
// (when the files lie below them) or else to each list's common folder, so
// that the same data read from another place (another cache folder,
// another working directory) is not a change.
func diffFiles(old, now []FileHash, roots []string) []string {
	o, okOld := underRoots(old, roots)
	n, okNow := underRoots(now, roots)
	if !okOld || !okNow {
		o, n = byCommonFolder(old), byCommonFolder(now)
	}
	var out []string
	for p, h := range n {
		switch oh, ok := o[p]; {
		case !ok:
			out = append(out, "added "+p)
		case oh != h:
			out = append(out, "changed "+p)
		}
	}
	for p := range o {
		if _, ok := n[p]; !ok {
			out = append(out, "removed "+p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.SplitN(out[i], " ", 2)[1] < strings.SplitN(out[j], " ", 2)[1]
	})
	return out
}

// byCommonFolder names each file relative to the folder all lie in.
func byCommonFolder(files []FileHash) map[string]string {
	out := make(map[string]string, len(files))
	if len(files) == 0 {
		return out
	}
	prefix := path.Dir(toSlash(files[0].Path))
	for _, f := range files[1:] {
		for p := toSlash(f.Path); prefix != "." && prefix != "/" && !strings.HasPrefix(p, prefix+"/"); {
			prefix = path.Dir(prefix)
		}
	}
	for _, f := range files {
		out[strings.TrimPrefix(toSlash(f.Path), prefix+"/")] = f.SHA256
	}
	return out
}

// underRoots names each file relative to the root it lies below; ok is
// false when one lies below none.
func underRoots(files []FileHash, roots []string) (map[string]string, bool) {
	out := make(map[string]string, len(files))
	for _, f := range files {
		p, found := toSlash(f.Path), false
		for _, r := range roots {
			if r = strings.TrimSuffix(toSlash(r), "/"); r != "" && strings.HasPrefix(p, r+"/") {
				out[p[len(r)+1:]], found = f.SHA256, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return out, true
}

func toSlash(p string) string { return strings.ReplaceAll(p, "\\", "/") }
