"""GPU and FPGA benchmarks of the trained models.

* :mod:`~thetaflow.benchmarking.timing`: latency/throughput measurement (warm-up, minimum
  count and duration, ``perf_counter_ns``, percentiles).
* :mod:`~thetaflow.benchmarking.gpu`: inference and training time on every visible GPU and on
  the CPU, in the same run (rule ``benchmark_gpu``).
* :mod:`~thetaflow.benchmarking.fixedpoint`: ``ap_fixed`` types, input-range profiling and
  the fidelity metrics of a fixed-point model against its float original.
* :mod:`~thetaflow.benchmarking.fpga`: the three FPGA tiers (rule ``benchmark_fpga``):
  bit-accurate emulation (hls4ml, conifer), clock cycles of a generated design (da4ml, conifer
  VHDL in GHDL) and resource estimates (da4ml, Yosys, conifer).
* :mod:`~thetaflow.benchmarking.tools`: the system tools these need, host and library versions.
"""
