# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts of the torchrun contract that modules, filters and the validator share."""

from __future__ import annotations

# What torchrun sets for every worker: nothing may pre-set them (a stale NODE_RANK or MASTER_* hangs
# the job). The unit and the health check unset them (filter torchrun_command), node_probe looks
# for them on the node and preflight refuses them there and in torchrun_env.
RANK_VARIABLES = ("NODE_RANK", "RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

# How each worker's line reaches the journal when the job's unit tees its workers' output
# (torchrun --tee with TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE): "[rank<global rank>]: <line>".
# The filter torchrun_command sets the template; the filter rank_logs splits the journal by it.
RANK_LINE_TEMPLATE = "[rank${rank}]: "
RANK_LINE_PATTERN = r"\[rank(\d+)\]: "
