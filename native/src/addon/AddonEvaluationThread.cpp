#include "AddonEvaluationThread.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace {

struct EvaluationQueue {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::packaged_task<void()>> tasks;
};

void runTasks(EvaluationQueue * queue) {
    for (;;) {
        std::packaged_task<void()> task;
        {
            std::unique_lock<std::mutex> lock(queue->mutex);
            queue->ready.wait(lock, [queue] { return !queue->tasks.empty(); });
            task = std::move(queue->tasks.front());
            queue->tasks.pop_front();
        }
        task();
    }
}

// Started on first use and never joined: it waits, idle, until the process exits
// (a static std::thread would call std::terminate at exit).
EvaluationQueue & evaluationQueue() {
    static EvaluationQueue * queue = [] {
        auto * created = new EvaluationQueue();
        std::thread(runTasks, created).detach();
        return created;
    }();
    return *queue;
}

} // namespace

void addonRunOnEvaluationThread(const std::function<void()> & work) {
    EvaluationQueue & queue = evaluationQueue();
    std::packaged_task<void()> task(work);
    std::future<void> done = task.get_future();
    {
        std::lock_guard<std::mutex> lock(queue.mutex);
        queue.tasks.push_back(std::move(task));
    }
    queue.ready.notify_one();
    done.get(); // rethrows what work threw
}
