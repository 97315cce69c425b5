// Package dist runs data-parallel training across processes: which worker
// this process is (rank, world size, local rank, from the launcher's
// environment) and the collectives the trainer needs (Comm), on existing
// engines opened at run time, never on a hand-written all-reduce.
//
// # Engines
//
//   - Single: the world of one process; every collective is the identity.
//   - MPI: MPI_COMM_WORLD of Open MPI (libmpi.so.40) or of the MPICH ABI
//     (libmpi.so.12: MPICH, Intel MPI, MVAPICH, Cray MPICH; Debian ships
//     MPICH as libmpich.so.12). All-reduce is MPI_Allreduce in place
//     (MPI_IN_PLACE, MPI_SUM on MPI_FLOAT or MPI_DOUBLE), broadcast is
//     MPI_Bcast of MPI_BYTE. Buffers longer than a C int are sent in
//     chunks. Engine() is "mpi:" and the first line of
//     MPI_Get_library_version ("mpi:Open MPI v4.1.4"). The nonblocking
//     all-reduce (IAllReduceSumF32, for gradients all-reduced during the
//     backward) is MPI_Iallreduce; since MPI libraries progress it only
//     inside MPI calls, the MPI thread calls MPI_Test on pending requests
//     every 200 us, and Wait is MPI_Wait, bounded like a blocking call.
//   - NCCL (libnccl.so.2, for workers whose tensors are on GPUs):
//     OpenNCCL makes one NCCL rank per worker on the GPU it trains on
//     (its local rank's), rank 0's ncclUniqueId handed round by the MPI
//     comm's broadcast. Each collective takes host slices like every Comm
//     and is staged through a buffer on the GPU (copied in, ncclAllReduce
//     or ncclBroadcast in place on the legacy default stream, copied out):
//     the trainer's gradients reach the host first, so a bucket crosses
//     PCIe four times, and the nonblocking all-reduce completes before it
//     returns (nothing to overlap). Device-resident buckets, all-reduced
//     on the backward's stream, need the CUDA backend to hand out its
//     tensors' device addresses; that is the next step. Completion is
//     polled (cuStreamQuery, ncclCommGetAsyncError) and bounded by
//     FTUNE_DIST_TIMEOUT, past which the communicator is aborted
//     (ncclCommAbort) and Close aborts the job through MPI. Engine() is
//     "nccl:<version> (host-staged; bootstrap mpi:...)". Workers on CUDA
//     that find no NCCL are refused with the missing library named, unless
//     FTUNE_DIST_HOST_MPI=1 asks for host copies over MPI, which the run
//     prints as a warning (recipe). No GPU machine was at hand when this
//     was written: the NCCL path is compile-checked only, and
//     scripts/nccl-check.sh runs its tests (one rank on one GPU, two ranks
//     on two) and the bandwidth they reach on the next GPU machine.
//
// The libraries are opened with github.com/ebitengine/purego, like the
// CUDA driver in kernels/cuda, so a CGO_ENABLED=0 binary runs MPI jobs
// where MPI is installed and single-process runs everywhere.
//
// # The two MPI ABIs
//
// MPI standardises the C API, not the binary one. In Open MPI a handle is a
// pointer and each predefined handle is the address of an exported global
// (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float,
// MPI_SUM &ompi_mpi_op_sum, MPI_ERRORS_RETURN &ompi_mpi_errors_return) and
// MPI_IN_PLACE is (void *)1. In MPICH a handle is a 32-bit int with a value
// fixed in mpi.h (MPI_COMM_WORLD 0x44000000, MPI_FLOAT 0x4c00040a, ...) and
// MPI_IN_PLACE is (void *)-1. A library exporting ompi_mpi_comm_world is
// taken as Open MPI, any other as the MPICH ABI. Handles travel as uintptr:
// an int argument is read from the low half of its register on amd64 and
// arm64, and every handle ftune passes is among a call's first six
// arguments. An MPI_Request is a pointer in Open MPI and an int in MPICH:
// ftune gives the library an 8-byte slot for either. MPI_STATUS_IGNORE is
// (MPI_Status *)0 in Open MPI and 1 in MPICH.
//
// Every MPI call runs on one goroutine locked to the OS thread that called
// MPI_Init_thread (MPI_THREAD_FUNNELED): Go moves goroutines between
// threads, MPI libraries need not allow that.
//
// # Launchers
//
// FromEnv reads the launcher's variables (Detect), in this order:
//
//   - Open MPI's mpirun: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK;
//   - MPICH's hydra (mpiexec): PMI_RANK, PMI_SIZE, MPI_LOCALRANKID;
//   - srun (inside a job step only, not in the batch script itself):
//     SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS), SLURM_LOCALID;
//   - a bare PMIx server: PMIX_RANK (the size then comes from MPI).
//
// No launcher, or a launcher of one worker, gives Single. More workers open
// the MPI library that belongs to the launcher (FTUNE_MPI_LIBRARY names
// another), and MPI's rank and size must equal the launcher's: N processes
// that each see a world of one (srun without --mpi=pmix, or the wrong MPI)
// would each train alone on all the data, so that is an error, as is a
// world of several workers where no MPI library opens.
//
// `ftune train --nproc-per-node N` on one machine starts the workers through
// the same path: Relaunch returns `mpirun -np N <ftune> <args>` (Open MPI's
// mpirun with --oversubscribe --bind-to none, and --allow-run-as-root as
// root; MPICH's as is), the args without --nproc-per-node; the workers read
// their ranks from mpirun's environment. There is no launcher-free
// bootstrap (a TCP rendezvous of ftune's own would be a second
// implementation of what mpirun does): without mpirun the flag is refused,
// saying what to install.
//
// # Failures
//
// MPI_ERRORS_RETURN is set on the communicator, so a failed call returns a
// Go error naming the call and the rank ("mpi rank 1: MPI_Allreduce: ...")
// instead of ending the job inside MPI. After a failure the Comm refuses
// further calls, and Close aborts the job (MPI_Abort) rather than finalise.
//
//   - A worker that fails outside a collective (its data file missing on
//     its machine, rank 0 unable to write the run folder): the others wait
//     for it in their next collective, and its MPI_Finalize would wait for
//     them. `ftune train` prints the error with the rank ("ftune: [rank 1]
//     data.files: ...") and then aborts the job (Abort; measured: 1 s from
//     the error to the end of the job under Open MPI, 0.2 s under MPICH,
//     where it used to last until the collective's timeout, the error
//     unprinted). Workers that all fail alike (train.ErrWorkersDiffer, the
//     check that they train the same thing) finalise together instead,
//     rank 0 printing the error.
//   - A dead worker: Open MPI's mpirun notices a worker's death and kills
//     the others; the job ends with mpirun's "process rank 1 ... exited on
//     signal 9" and a non-zero status (measured here: 1.5-2.4 s, 2 workers,
//     rank 1 SIGKILLed while rank 0 all-reduces). The survivors get no
//     error to handle: they are killed. MPICH's hydra does the same in
//     0.15 s but names the dead worker's PID, not its rank. srun ends the
//     step only with --kill-on-bad-exit (-K), by Slurm's documentation (no
//     Slurm here to measure); otherwise the survivors wait until their
//     collective times out, as for a hung worker.
//   - A hung worker (alive, not calling collectives): each collective waits
//     at most FTUNE_DIST_TIMEOUT (default 30m, since rank 0 may spend
//     minutes writing a checkpoint while the others wait). Past it the
//     waiting worker returns "mpi rank 0: MPI_Allreduce(MPI_FLOAT) did not
//     complete within 2s: another worker is hung or dead", which `ftune
//     train` prints before it aborts the job, killing the hung worker too
//     (measured: the job ends 2.4 s after start with a 2 s timeout). The abort runs on a fresh
//     thread, as the MPI thread is stuck in the collective: strictly beyond
//     MPI_THREAD_FUNNELED, honoured by Open MPI and MPICH (measured).
//
// Checkpoints are written by rank 0 alone, so a job killed either way
// leaves the last complete checkpoint as it was.
//
// # Scaling model
//
// A model from datasheets and arithmetic, not a measurement. LoRA with
// rank r on a d_in x d_out projection trains r(d_in + d_out) parameters;
// with r = 16 on the seven projections (q, k, v, o, gate, up, down) of the
// Llama shapes, the float32 gradients all-reduced per optimizer step are:
//
//	model      hidden  layers  kv dim  ffn     LoRA params   gradient bytes
//	Llama 1B   2048    16      512     8192    11.27 M        45.1 MB
//	Llama 8B   4096    32      1024    14336   41.94 M       167.8 MB
//	Llama 70B  8192    80      1024    28672   207.1 M       828.4 MB
//
// (per layer: 2048+2048 + 2(2048+512) + 2048+2048 + 3(2048+8192) = 44032
// times r = 16 times 16 layers = 11.27 M for 1B). A ring all-reduce moves
// 2(N-1)/N x bytes over each GPU's slowest link:
//
//	             8 GPUs, NVLink 450 GB/s     2x8 GPUs, 400 Gb/s IB (50 GB/s)
//	             1.75 x bytes / 450 GB/s     1.875 x bytes / 50 GB/s
//	Llama 1B     0.18 ms                     1.69 ms
//	Llama 8B     0.65 ms                     6.29 ms
//	Llama 70B    3.22 ms                    31.06 ms
//
// (2x8: one 400 Gb/s NIC per GPU, so the ring's inter-node hops run at
// 50 GB/s; add about 2(N-1) x 5-10 us of latency per all-reduce call, which
// is why gradients go in buckets of megabytes, not per tensor). Against a
// step of 4096 tokens per GPU at 4 x params x tokens FLOPs (forward, and
// backward through the frozen weights without their gradients) and
// 400 TFLOP/s sustained bf16 (40% of an H100's dense peak): 1B 51 ms,
// 8B 329 ms, 70B 2.89 s (70B only in NF4 on one 80 GB GPU). Not hidden at
// all, the all-reduce would add 0.35%, 0.20% and 0.11% of the step at 8
// GPUs, and 3.3%, 1.9% and 1.1% at 2x8.
//
// The trainer all-reduces the gradients in buckets (16 MiB by default,
// FTUNE_DIST_BUCKET_MB) started during the backward of each worker's last
// micro-batch of the step, each as soon as the autograd tape reports its
// parameters' gradients complete (train/distributed_sync.go); the bucket
// order is rank 0's completion order in the first step. What is left
// exposed is the buckets still in flight when the backward ends: at
// least the last bucket, which holds the first layers' parameters and
// completes with the backward. With the backward half the step (2 of the
// 4 x params x tokens FLOPs) and the gradients completing evenly through
// it, the all-reduce is hidden whenever it is shorter than the backward,
// which holds at every row above (the 2x8 70B case: 31 ms against about
// 1.45 s); the exposed part is the last bucket's all-reduce,
// 1.875 x 16.8 MB / 50 GB/s = 0.63 ms at 2x8 (1.2% of the 1B step, 0.19%
// of the 8B step, 0.02% of the 70B step) and 1.75 x 16.8 MB / 450 GB/s =
// 0.07 ms over NVLink (0.13%, 0.02%, 0.002%). With gradient accumulation of k micro-batches only the
// last backward overlaps, but the all-reduce is then 1/k of the step's
// compute anyway. Under gradient checkpointing the LoRA parameters are
// used inside checkpointed blocks, which the tape does not see, so every
// bucket starts after the backward: the "not hidden" fractions above.
// Data parallelism with a replicated base is bounded by memory, not by
// the network.
//
// Measured here (FTUNE_DIST_OVERLAP=0 against the default, tiny-base, 2
// Open MPI workers, batch 8 x 128 tokens, grad_accum 2, 0.25 MiB buckets
// (the adapter is 1.8 MB: one 16 MiB bucket could not overlap), steps 2
// to 7, metric train/allreduce_exposed_s; the 2 cores at a load average
// of 11 from other jobs): step time 1.59 s and 1.90 s without overlap,
// 1.42 s and 0.78 s with it; exposed exchange 463 ms and 644 ms without,
// 440 ms and 129 ms with, single steps ranging from 1 ms to 2.1 s either
// way. The spread is the shared machine (a worker waiting for the other's
// backward counts as exposed time); it shows nothing either way, and on
// two shared cores the all-reduce and the backward compete for the same
// cores anyway.
//
// # Sharding the frozen base (design; not built)
//
// When the base does not fit one GPU, each of N workers would hold 1/N of
// every frozen weight and all-gather a layer's weights just before that
// layer runs, in the forward and again in the backward (dx = g·W needs W),
// and a third time under gradient checkpointing; the LoRA parameters stay
// replicated and all-reduced as above. The arithmetic, bf16 base:
//
//	model      base bf16   per GPU of 8   gathered per step per GPU (2 passes)   at 450 GB/s   compute/step
//	Llama 8B   16.1 GB     2.0 GB          2 x 7/8 x 16.1 =  28 GB                62 ms        329 ms
//	Llama 70B  141 GB      17.6 GB         2 x 7/8 x 141  = 247 GB               549 ms        2.89 s
//
// Inside one NVLink node the gathers (prefetched one layer ahead: two
// layers of 1.76 GB resident for 70B) hide under compute with room to
// spare. Across 2x8 GPUs on 50 GB/s links the 70B gathers would take
// 2 x 15/16 x 141 GB / 50 GB/s = 5.3 s against 2.89 s of compute, so the
// design shards within a node and replicates across nodes (gradients are
// the only inter-node traffic, as above). In NF4 (0.516 bytes a weight,
// quant/nf4) a 70B base is 36.4 GB and fits one 80 GB GPU replicated,
// which is why sharding is not built yet: it buys bf16 70B on 8 GPUs,
// nothing smaller.
//
// Measured here (CPU, Open MPI 4.1.4 shared memory, 2 workers on 2 cores
// shared with other jobs): a 4 MB float32 all-reduce in 64 Ki-element
// chunks took 3 ms to 700 ms (1.3 to 0.01 GB/s) across runs of
// TestMPICollectivesAcrossTwoWorkers: oversubscribed cores, not a figure
// to plan with.
package dist
