import Dispatch
import Evaluation
import Foundation

/// Ctrl-C or SIGTERM during long CLI work (`tovd evaluate`, `tovd pretrain`): the first asks `stop`,
/// and work listening for it (θ0 pretraining) saves where it is so the same command resumes; with
/// nothing listening, or on a second signal, the command exits at once (status 130). Cancel the
/// returned sources when the work is done.
func stopOnSignals(_ stop: StopRequest, saving: String) -> [any DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            if stop.request() {
                FileHandle.standardError.write(Data("\nstopping \(saving) after this step to save it (again to quit at once)\n".utf8))
            } else {
                FileHandle.standardError.write(Data("\ninterrupted: rerun the same command to resume\n".utf8))
                // _exit, not exit: exit's handlers include OpenBLAS's shutdown, which waits for its
                // threads while another thread is inside a GEMM, so `exit` hung and the fine-tunes
                // went on after "interrupted" (seen twice with --threads 2). Everything worth keeping
                // is on disk already (runs.jsonl, scores, θ0s), written as each finished.
                _exit(130)
            }
        }
        source.resume()
        return source
    }
}
