package dist

import (
	"fmt"
	"strings"

	"github.com/ebitengine/purego"
)

// loadMPI opens the first library of candidates that loads and binds every
// function ftune calls. The error lists each candidate's failure and what
// to install.
func loadMPI(candidates []string) (*mpiLib, error) {
	var failures []string
	for _, name := range candidates {
		// RTLD_GLOBAL: Open MPI loads its transport plugins with dlopen, and
		// they resolve libmpi's symbols from the global namespace.
		lib, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		m, err := bindMPI(name, lib)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		return m, nil
	}
	return nil, fmt.Errorf("mpi: no MPI library could be opened (%s); %s", strings.Join(failures, "; "), installHint)
}

func bindMPI(name string, lib uintptr) (*mpiLib, error) {
	m := &mpiLib{name: name}
	if _, err := purego.Dlsym(lib, "ompi_mpi_comm_world"); err == nil {
		h, err := openMPIHandles(lib, purego.Dlsym)
		if err != nil {
			return nil, err
		}
		m.h = h
	} else {
		m.h = mpichHandles
	}
	for _, s := range []struct {
		fn   any
		name string
	}{
		{&m.initialized, "MPI_Initialized"},
		{&m.finalized, "MPI_Finalized"},
		{&m.initThread, "MPI_Init_thread"},
		{&m.commRank, "MPI_Comm_rank"},
		{&m.commSize, "MPI_Comm_size"},
		{&m.commSetErrh, "MPI_Comm_set_errhandler"},
		{&m.allreduce, "MPI_Allreduce"},
		{&m.iallreduce, "MPI_Iallreduce"},
		{&m.test, "MPI_Test"},
		{&m.wait, "MPI_Wait"},
		{&m.bcast, "MPI_Bcast"},
		{&m.barrier, "MPI_Barrier"},
		{&m.finalize, "MPI_Finalize"},
		{&m.abort, "MPI_Abort"},
		{&m.libraryVersion, "MPI_Get_library_version"},
		{&m.errorString, "MPI_Error_string"},
	} {
		// Dlsym first: RegisterLibFunc panics on a missing symbol, and an
		// MPI older than 3.0 (no MPI_Get_library_version) must be an error.
		if _, err := purego.Dlsym(lib, s.name); err != nil {
			return nil, fmt.Errorf("symbol %s missing (need an MPI-3 library)", s.name)
		}
		purego.RegisterLibFunc(s.fn, lib, s.name)
	}
	return m, nil
}
