package main

import "github.com/spf13/cobra"

func newTrainCmd() *cobra.Command {
	return &cobra.Command{Use: "train", Short: "Fine-tune a model (placeholder until the data pipeline lands)"}
}
