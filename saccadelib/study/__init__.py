"""The study that reproduces the paper: the experiments' configs (``experiments``), their values at each
profile (``profiles``), the list the runner executes (``plan``), training and collecting their runs
(``runs``), reading finished runs back (``readback``), Table 1 and the cost table (``reports``), the noise sliders
(``explorer``) and the notebook runner (``runner``). Needs the ``study`` extra (pandas, papermill, …).

The notebooks call the names re-exported here.
"""
from ..recipes import LARGE_SIDE, RECIPES, TASK_RECIPE
from .experiments import (PROFILES, EfficiencyStudy, FiveKStudy, NoiseStudy, ResolutionStudy, TaskStudy, Training,
                          dataset_name)
from .plan import EXPERIMENTS, Experiment, settings_fingerprint
from .profiles import efficiency_study, fivek_study, noise_study, resolution_study, task_study
from .explorer import NoiseExplorer
from .reports import PAPER, profile_time, table1, table1_markdown
from .readback import (accuracy_by_digit_overlap, collect, datasets_used, first_run, histories, label_table,
                       load_trained, noise_robustness, overlap_summary, policy_over_prior, robustness_summary,
                       save_config, save_table, summarize)
from .progress import planned_minutes
from .runs import (RunSpec, canvases_per_epoch, default_out, default_runs, fivek_runs, inference_costs, noise_label,
                   noise_runs, prepare_fivek_miniature, prepare_resolution_data,
                   resolution_evaluation_set, resolution_runs, run_folder, task_runs, train_all)

__all__ = ["EXPERIMENTS", "LARGE_SIDE", "PROFILES", "RECIPES", "TASK_RECIPE", "EfficiencyStudy", "Experiment",
           "FiveKStudy", "NoiseStudy", "dataset_name", "ResolutionStudy", "TaskStudy", "Training",
           "efficiency_study", "fivek_study", "noise_study", "resolution_study", "settings_fingerprint",
           "task_study", "NoiseExplorer", "PAPER", "profile_time", "table1", "table1_markdown",
           "accuracy_by_digit_overlap", "collect", "datasets_used", "first_run", "histories", "label_table",
           "load_trained", "noise_robustness", "overlap_summary", "policy_over_prior", "robustness_summary",
           "save_config", "save_table", "summarize", "RunSpec", "canvases_per_epoch", "default_out", "default_runs",
           "fivek_runs", "inference_costs", "noise_label", "noise_runs", "planned_minutes",
           "prepare_fivek_miniature", "prepare_resolution_data", "resolution_evaluation_set", "resolution_runs",
           "run_folder", "task_runs", "train_all"]
