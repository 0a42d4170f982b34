"""The study that reproduces the paper: experiments and profiles (``experiments``), training and
collecting their runs (``runs``), Table 1 and the cost table (``reports``), the noise sliders
(``explorer``) and the notebook runner (``runner``). Needs the ``study`` extra (pandas, papermill, …).

The notebooks call the names re-exported here.
"""
from .experiments import (EXPERIMENTS, LARGE_SIDE, PROFILES, RECIPES, TASK_RECIPE, EfficiencyStudy, Experiment,
                          FiveKStudy, NoiseStudy, ResolutionStudy, TaskStudy, Training, efficiency_study, fivek_study,
                          noise_study, resolution_study, settings_fingerprint, task_study)
from .explorer import NoiseExplorer
from .reports import PAPER, profile_time, table1, table1_markdown
from .runs import (RunSpec, canvases_per_epoch, collect, datasets_used, default_out, default_runs, first_run, fivek_runs, histories, inference_costs,
                   load_trained, noise_label, noise_robustness, noise_runs, robustness_summary, planned_minutes, prepare_fivek_miniature, prepare_resolution_data, resolution_evaluation_set, resolution_runs,
                   run_folder, save_config, save_table, summarize, task_runs, train_all)

__all__ = ["EXPERIMENTS", "LARGE_SIDE", "PROFILES", "RECIPES", "TASK_RECIPE", "EfficiencyStudy", "Experiment",
           "FiveKStudy", "NoiseStudy", "ResolutionStudy", "TaskStudy", "Training", "efficiency_study", "fivek_study", "noise_study",
           "resolution_study", "settings_fingerprint", "task_study", "NoiseExplorer", "PAPER", "profile_time", "table1",
           "table1_markdown", "RunSpec", "canvases_per_epoch", "collect", "datasets_used", "default_out", "default_runs", "first_run",
           "fivek_runs", "histories", "inference_costs", "load_trained", "noise_label", "noise_robustness", "noise_runs", "robustness_summary", "planned_minutes",
           "prepare_fivek_miniature",
           "prepare_resolution_data", "resolution_evaluation_set", "resolution_runs", "run_folder",
           "save_config", "save_table", "summarize", "task_runs", "train_all"]
