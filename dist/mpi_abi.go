package dist

import (
	"fmt"
	"os"
	"strings"
	"unsafe"
)

// The two MPI ABIs ftune speaks. MPI fixes the C API, not the binary
// interface, and the two families of libraries differ in what a handle is:
//
//   - Open MPI (libmpi.so.40): MPI_Comm, MPI_Datatype and MPI_Op are
//     pointers, and the predefined handles are the addresses of exported
//     globals (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT is
//     &ompi_mpi_float, MPI_SUM is &ompi_mpi_op_sum, ...). MPI_IN_PLACE is
//     (void *)1.
//   - MPICH and the libraries of its ABI initiative (libmpi.so.12: MPICH,
//     Intel MPI, MVAPICH, Cray MPICH; Debian names MPICH's libmpich.so.12):
//     handles are 32-bit ints with fixed values from mpi.h, and
//     MPI_IN_PLACE is (void *)-1.
//
// Every handle travels as a uintptr. For Open MPI that is the pointer; for
// MPICH the int goes in the low 32 bits of an argument register, which is
// where the C callee reads an int on amd64 and arm64 (the handles of every
// MPI call ftune makes are among its first six arguments, so none goes on
// the stack; MPI_Iallreduce's seventh, on amd64's stack, is a pointer).
//
// An MPI_Request is written by the library into memory ftune provides: a
// pointer in Open MPI, an int in MPICH; an 8-byte slot holds either (the
// int in its low half, where a little-endian C int* reads it).
// MPI_STATUS_IGNORE is (MPI_Status *)0 in Open MPI and (MPI_Status *)1 in
// MPICH.
type mpiHandles struct {
	family      string // "openmpi" or "mpich"
	commWorld   uintptr
	float32T    uintptr
	float64T    uintptr
	byteT       uintptr
	opSum       uintptr
	errorsRet   uintptr
	inPlace     uintptr
	statusIgn   uintptr // MPI_STATUS_IGNORE
	maxErrorStr int     // MPI_MAX_ERROR_STRING
	maxVersion  int     // MPI_MAX_LIBRARY_VERSION_STRING
}

// MPICH's mpi.h constants (the values of its ABI, stable since MPICH 3.1).
var mpichHandles = mpiHandles{
	family:      "mpich",
	commWorld:   0x44000000,
	float32T:    0x4c00040a,
	float64T:    0x4c00080b,
	byteT:       0x4c00010d,
	opSum:       0x58000003,
	errorsRet:   0x54000001,
	inPlace:     ^uintptr(0), // (void *)-1
	statusIgn:   1,
	maxErrorStr: 1024,
	maxVersion:  8192,
}

// openMPIHandles resolves Open MPI's predefined handles: each is the
// address of an exported global of libmpi.so.40.
func openMPIHandles(lib uintptr, dlsym func(uintptr, string) (uintptr, error)) (mpiHandles, error) {
	h := mpiHandles{family: "openmpi", inPlace: 1, maxErrorStr: 256, maxVersion: 256}
	for _, s := range []struct {
		name string
		dst  *uintptr
	}{
		{"ompi_mpi_comm_world", &h.commWorld},
		{"ompi_mpi_float", &h.float32T},
		{"ompi_mpi_double", &h.float64T},
		{"ompi_mpi_byte", &h.byteT},
		{"ompi_mpi_op_sum", &h.opSum},
		{"ompi_mpi_errors_return", &h.errorsRet},
	} {
		addr, err := dlsym(lib, s.name)
		if err != nil || addr == 0 {
			return mpiHandles{}, fmt.Errorf("mpi: Open MPI library lacks the global %s (not an Open MPI 4 or 5 ABI?)", s.name)
		}
		*s.dst = addr
	}
	return h, nil
}

// mpiLibraryEnv names the variable that picks the MPI library explicitly
// (a soname or a path), for MPIs installed outside the loader's path.
const mpiLibraryEnv = "FTUNE_MPI_LIBRARY"

// mpiCandidates lists the libraries to try, in order, for a launcher
// family: the library must be the one the launcher belongs to (Open MPI's
// libmpi cannot join a job started by MPICH's hydra, nor the reverse),
// so a known launcher narrows the list.
func mpiCandidates(launcher string) []string {
	if lib := strings.TrimSpace(os.Getenv(mpiLibraryEnv)); lib != "" {
		return []string{lib}
	}
	switch launcher {
	case launcherOpenMPI:
		return []string{"libmpi.so.40"}
	case launcherHydra:
		return []string{"libmpi.so.12", "libmpich.so.12"}
	}
	return []string{"libmpi.so.40", "libmpi.so.12", "libmpich.so.12"}
}

// installHint says what to install when no MPI library opens.
const installHint = "install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin; it provides mpirun and libmpi.so.40) " +
	"or MPICH (apt-get install mpich: libmpich.so.12), or name the library in " + mpiLibraryEnv

// mpiLib is the MPI library bound at run time: the C functions ftune calls
// and the handles of its ABI. Every int the C API takes or returns is an
// int32 here; handles are uintptr (see mpiHandles).
type mpiLib struct {
	name string // the soname or path that opened
	h    mpiHandles

	initialized    func(flag *int32) int32
	finalized      func(flag *int32) int32
	initThread     func(argc, argv unsafe.Pointer, required int32, provided *int32) int32
	commRank       func(comm uintptr, rank *int32) int32
	commSize       func(comm uintptr, size *int32) int32
	commSetErrh    func(comm, errh uintptr) int32
	allreduce      func(send uintptr, recv unsafe.Pointer, count int32, dtype, op, comm uintptr) int32
	iallreduce     func(send uintptr, recv unsafe.Pointer, count int32, dtype, op, comm uintptr, req *uint64) int32
	test           func(req *uint64, flag *int32, status uintptr) int32
	wait           func(req *uint64, status uintptr) int32
	bcast          func(buf unsafe.Pointer, count int32, dtype uintptr, root int32, comm uintptr) int32
	barrier        func(comm uintptr) int32
	finalize       func() int32
	abort          func(comm uintptr, code int32) int32
	libraryVersion func(buf *byte, n *int32) int32
	errorString    func(code int32, buf *byte, n *int32) int32
}
