package train_test

import "os"

// corrupt truncates a file to half its size.
func corrupt(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, st.Size()/2)
}
